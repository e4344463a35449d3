//! The Management API functions, one per method and route; the wire is `crate::api_v2`.

use lambda_http::{Body, Request, Response};

use super::BoxFuture;
use crate::api_v2::{call, clients, device_credentials, logs, preflight_response, users};
use crate::app::{Api, Base};

/// `GET /api/v2/device-credentials`
pub fn list_device_credentials(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| device_credentials::list(&app.store, who, req, app.clock.now())).await
    })
}

/// `DELETE /api/v2/device-credentials/{id}` (a `{}` body, as node-auth0 v2 sends, is ignored).
pub fn delete_device_credential(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| device_credentials::delete(&app.store, who, req, app.clock.now())).await
    })
}

/// `GET /api/v2/users`
pub fn list_users(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| users::list(&app.store, who, req)).await
    })
}

/// `GET /api/v2/users/{id}`
pub fn get_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| users::get(&app.store, who, req)).await
    })
}

/// `POST /api/v2/users`
pub fn create_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| users::create(&app.store, who, req, app.clock.now())).await
    })
}

/// `PATCH /api/v2/users/{id}`
pub fn update_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| users::update(&app.store, who, req, app.clock.now())).await
    })
}

/// `DELETE /api/v2/users/{id}`
pub fn delete_user(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| users::delete(&app.store, who, req, app.clock.now())).await
    })
}

/// `GET /api/v2/logs`
pub fn list_logs(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| logs::list(&app.store, who, req, app.clock.now())).await
    })
}

/// `GET /api/v2/users/{id}/logs`
pub fn list_user_logs(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| logs::list_for_user(&app.store, who, req)).await
    })
}

/// `GET /api/v2/clients`
pub fn list_clients(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| clients::list(&app.store, who, req)).await
    })
}

/// `GET /api/v2/clients/{id}`
pub fn get_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| clients::get(&app.store, who, req)).await
    })
}

/// `POST /api/v2/clients`
pub fn create_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let (req, algs) = (&req, &app.verifier.algorithms());
        call(app, req, |who| clients::create(&app.store, who, req, algs, app.clock.now())).await
    })
}

/// `PATCH /api/v2/clients/{id}`
pub fn update_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let (req, algs) = (&req, &app.verifier.algorithms());
        call(app, req, |who| clients::update(&app.store, who, req, algs)).await
    })
}

/// `DELETE /api/v2/clients/{id}`
pub fn delete_client(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let req = &req;
        call(app, req, |who| clients::delete(&app.store, who, req)).await
    })
}

/// `OPTIONS /api/v2/{proxy+}`: CORS preflight.
pub fn api_preflight(_base: &Base, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move { preflight_response(&req) })
}
