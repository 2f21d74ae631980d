//! The OpenAPI 3 document of the API, generated from the object kinds so it always lists every
//! route netmaster serves.

use contiv_model::ObjectKind;
use serde_json::{json, Map, Value};

fn error_responses() -> Value {
    json!({
        "500": { "description": "Contiv-style error (default): the message as text/plain",
                 "content": { "text/plain": { "schema": { "type": "string" } } } },
        "400": { "description": "invalid request (with Accept: application/problem+json)", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
        "404": { "description": "not found (with Accept: application/problem+json)", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
        "409": { "description": "conflict with current state (with Accept: application/problem+json)", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
    })
}

fn object_schema(kind: ObjectKind) -> Value {
    let mut props = Map::new();
    props.insert("key".into(), json!({ "type": "string" }));
    for f in kind.key_fields() {
        props.insert((*f).into(), json!({ "type": "string", "maxLength": 256 }));
    }
    json!({ "type": "object", "properties": props, "required": kind.key_fields(), "additionalProperties": true })
}

fn json_ok(schema: Value) -> Value {
    json!({ "description": "OK", "content": { "application/json": { "schema": schema } } })
}

fn object_paths(kind: ObjectKind, paths: &mut Map<String, Value>) {
    let plural = kind.plural();
    let name = kind.type_name();
    let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    let key_param = json!([{ "name": "key", "in": "path", "required": true,
        "description": format!("{} joined by ':'", kind.key_fields().join(", ")), "schema": { "type": "string" } }]);
    let with_errors = |ok: Value| {
        let mut r = error_responses();
        if let Some(m) = r.as_object_mut() {
            m.insert("200".into(), ok);
        }
        r
    };
    let inspect = json!({ "get": { "operationId": format!("inspect_{name}"), "parameters": key_param,
        "responses": with_errors(json_ok(json!({ "type": "object" }))) } });
    paths.insert(format!("/api/v1/inspect/{plural}/{{key}}/"), inspect);
    if !kind.is_config() {
        return;
    }
    paths.insert(format!("/api/v1/{plural}/"), json!({ "get": { "operationId": format!("list_{name}"),
        "responses": with_errors(json_ok(json!({ "type": "array", "items": schema }))) } }));
    let body = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    paths.insert(format!("/api/v1/{plural}/{{key}}/"), json!({
        "get": { "operationId": format!("get_{name}"), "parameters": key_param, "responses": with_errors(json_ok(schema.clone())) },
        "post": { "operationId": format!("create_{name}"), "parameters": key_param, "requestBody": body, "responses": with_errors(json_ok(schema.clone())) },
        "put": { "operationId": format!("update_{name}"), "parameters": key_param, "requestBody": body, "responses": with_errors(json_ok(schema.clone())) },
        "delete": { "operationId": format!("delete_{name}"), "parameters": key_param, "responses": with_errors(json_ok(json!({ "type": "string" }))) },
    }));
}

fn plugin_paths(paths: &mut Map<String, Value>) {
    for op in ["allocAddress", "releaseAddress", "createEndpoint", "deleteEndpoint", "updateEndpoint"] {
        let body = json!({ "required": true, "content": { "application/json": { "schema": { "type": "object" } } } });
        let mut responses = error_responses();
        if let Some(m) = responses.as_object_mut() {
            m.insert("200".into(), json_ok(json!({})));
        }
        paths.insert(format!("/plugin/{op}"), json!({ "post": { "operationId": op, "requestBody": body, "responses": responses } }));
    }
    paths.insert("/version".into(), json!({ "get": { "operationId": "version", "responses": { "200": json_ok(json!({ "type": "object" })) } } }));
    paths.insert("/info".into(), json!({ "get": { "operationId": "info", "responses": { "200": json_ok(json!({ "type": "object" })) } } }));
}

/// The document served at `/api/v1/openapi.json`.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for kind in ObjectKind::ALL {
        object_paths(kind, &mut paths);
        schemas.insert(kind.type_name().into(), object_schema(kind));
    }
    plugin_paths(&mut paths);
    schemas.insert("Problem".into(), json!({ "type": "object", "properties": {
        "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" } } }));
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Contiv netmaster API", "version": version },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}
