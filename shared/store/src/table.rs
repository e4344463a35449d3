//! The table's shape, as `template.yaml` declares it, and its creation on a local server.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use rt_domain::ports::StoreError;

use crate::{DynamoStore, build_err, unavailable};

/// A table definition: what `AWS::DynamoDB::Table` in `template.yaml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub hash_key: String,
    pub range_key: Option<String>,
    /// Attribute name and type (`S`, `N` or `B`).
    pub attributes: Vec<(String, String)>,
    pub indexes: Vec<IndexSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// The attributes an `INCLUDE` projection adds to the keys.
    pub non_key_attributes: Vec<String>,
}

fn schema(hash: &str, range: Option<&String>) -> Result<Vec<KeySchemaElement>, StoreError> {
    let mut v =
        vec![KeySchemaElement::builder().attribute_name(hash).key_type(KeyType::Hash).build().map_err(build_err)?];
    if let Some(r) = range {
        v.push(KeySchemaElement::builder().attribute_name(r).key_type(KeyType::Range).build().map_err(build_err)?);
    }
    Ok(v)
}

impl DynamoStore {
    /// Creates the table (on-demand billing) unless it exists.
    pub async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        let mut req = self
            .ddb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(schema(&spec.hash_key, spec.range_key.as_ref())?));
        for (name, ty) in &spec.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(ty.as_str()))
                    .build()
                    .map_err(build_err)?,
            );
        }
        for ix in &spec.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .set_key_schema(Some(schema(&ix.hash_key, ix.range_key.as_ref())?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(ix.projection.as_str()))
                            .set_non_key_attributes(
                                (!ix.non_key_attributes.is_empty()).then(|| ix.non_key_attributes.clone()),
                            )
                            .build(),
                    )
                    .build()
                    .map_err(build_err)?,
            );
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}
