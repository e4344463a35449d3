//! The Management API functions, one per method and route.

use lambda_http::{Body, Request, Response};
use rt_domain::management::{clients, device_credentials, users};

use super::BoxFuture;
use crate::app::{Api, Base};
use crate::mgmt::{Reply, call, json_body, path, preflight_response, query};

/// `GET /api/v2/device-credentials`
pub fn list_device_credentials(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            let q = query(req)?;
            Ok(Reply::Json(200, device_credentials::list(&app.store, &who, &q).await?))
        })
        .await
    })
}

/// `DELETE /api/v2/device-credentials/{id}` (a `{}` body, as node-auth0 v2 sends, is ignored).
pub fn delete_device_credential(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            device_credentials::delete(&app.store, &who, &path(req, "id")?).await?;
            Ok(Reply::NoContent)
        })
        .await
    })
}

/// `GET /api/v2/users`
pub fn list_users(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move { Ok(Reply::Json(200, users::list(&app.store, &who, &query(req)?).await?)) })
            .await
    })
}

/// `GET /api/v2/users/{id}`
pub fn get_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            Ok(Reply::Json(200, users::get(&app.store, &who, &path(req, "id")?, &query(req)?).await?))
        })
        .await
    })
}

/// `POST /api/v2/users`
pub fn create_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            Ok(Reply::Json(201, users::create(&app.store, &who, json_body(req)?, app.clock.now()).await?))
        })
        .await
    })
}

/// `PATCH /api/v2/users/{id}`
pub fn update_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            let v = users::update(&app.store, &who, &path(req, "id")?, json_body(req)?, app.clock.now()).await?;
            Ok(Reply::Json(200, v))
        })
        .await
    })
}

/// `DELETE /api/v2/users/{id}`
pub fn delete_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            users::delete(&app.store, &who, &path(req, "id")?).await?;
            Ok(Reply::NoContent)
        })
        .await
    })
}

/// `GET /api/v2/clients`
pub fn list_clients(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move { Ok(Reply::Json(200, clients::list(&app.store, &who, &query(req)?).await?)) })
            .await
    })
}

/// `GET /api/v2/clients/{id}`
pub fn get_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            Ok(Reply::Json(200, clients::get(&app.store, &who, &path(req, "id")?, &query(req)?).await?))
        })
        .await
    })
}

/// `POST /api/v2/clients`
pub fn create_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            Ok(Reply::Json(201, clients::create(&app.store, &who, json_body(req)?, app.clock.now()).await?))
        })
        .await
    })
}

/// `PATCH /api/v2/clients/{id}`
pub fn update_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            Ok(Reply::Json(200, clients::update(&app.store, &who, &path(req, "id")?, json_body(req)?).await?))
        })
        .await
    })
}

/// `DELETE /api/v2/clients/{id}`
pub fn delete_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| async move {
            clients::delete(&app.store, &who, &path(req, "id")?).await?;
            Ok(Reply::NoContent)
        })
        .await
    })
}

/// `OPTIONS /api/v2/{proxy+}`: CORS preflight.
pub fn api_preflight(_base: &Base, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move { preflight_response(&req) })
}
