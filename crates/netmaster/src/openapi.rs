//! The OpenAPI 3 document of the API, generated from the object kinds and their field tables
//! ([`ObjectKind::fields`]) so it lists every route netmaster serves and describes every field
//! with the very constraints `validate` enforces (type, maxLength, pattern, bounds, default,
//! required). Objects keep `additionalProperties: true`: like Contiv, netmaster ignores unknown
//! fields.
//!
//! Patterns are Contiv's RE2 sources translated to ECMA-262 ([`ecma_pattern`]). The plugin and
//! agent bodies (`contiv-api` types) are described by hand here; a test checks their member
//! names against the serialized types.

use contiv_model::{FieldKind, FieldSpec, ObjectKind};
use serde_json::{json, Map, Value};

/// Translates a Go RE2 pattern to ECMA-262 (JSON Schema's dialect). Contiv's patterns are simple
/// anchored ones; the differences handled are `\A` / `\z` anchors, `(?P<name>` groups and
/// escaped punctuation that is no ECMA syntax character (`\:`, or `\-` outside a class), which
/// strict (`u` flag) ECMA engines refuse.
pub fn ecma_pattern(re2: &str) -> String {
    let mut out = String::with_capacity(re2.len());
    let mut chars = re2.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('A') => out.push('^'),
                Some('z') => out.push('$'),
                Some(e) if e == '-' && in_class => out.push_str("\\-"),
                Some(e) if e.is_ascii_punctuation() && !"^$\\.*+?()[]{}|/".contains(e) => {
                    out.push(e)
                }
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                if chars.peek() == Some(&']') {
                    // A leading `]` is a literal in RE2.
                    chars.next();
                    out.push_str("\\]");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '(' if !in_class && re2_named_group(&mut chars) => out.push_str("(?<"),
            _ => out.push(c),
        }
    }
    out
}

/// After `(`: consumes `?P<` and says so.
fn re2_named_group(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let rest: String = chars.clone().take(3).collect();
    if rest == "?P<" {
        chars.nth(2);
        true
    } else {
        false
    }
}

/// The JSON schema of one field.
pub fn field_schema(spec: &FieldSpec) -> Value {
    let mut s = Map::new();
    let string_constraints = |s: &mut Map<String, Value>| {
        if let Some(n) = spec.max_len {
            s.insert("maxLength".into(), json!(n));
        }
        if let Some(p) = spec.pattern {
            s.insert("pattern".into(), json!(ecma_pattern(p)));
        }
    };
    match spec.kind {
        FieldKind::String => {
            s.insert("type".into(), json!("string"));
            string_constraints(&mut s);
            if let Some(d) = spec.default {
                s.insert("default".into(), json!(d));
            }
        }
        FieldKind::Int => {
            s.insert("type".into(), json!("integer"));
            s.insert("format".into(), json!("int64"));
            s.insert("minimum".into(), json!(spec.min.unwrap_or(i64::MIN)));
            s.insert("maximum".into(), json!(spec.max.unwrap_or(i64::MAX)));
            if let Some(d) = spec.default.and_then(|d| d.parse::<i64>().ok()) {
                s.insert("default".into(), json!(d));
            }
        }
        FieldKind::StringList => {
            let mut items = Map::new();
            items.insert("type".into(), json!("string"));
            string_constraints(&mut items);
            s.insert("type".into(), json!("array"));
            s.insert("items".into(), Value::Object(items));
        }
    }
    if !spec.required {
        // Go decoding reads `null` as "leave the zero value", which an optional field accepts.
        s.insert("nullable".into(), json!(true));
    }
    Value::Object(s)
}

fn link_ref() -> Value {
    json!({ "$ref": "#/components/schemas/Link" })
}

/// An optional object member (`null` reads as empty, like Go).
fn nullable_object(extra: Value) -> Value {
    let mut s = json!({ "type": "object", "nullable": true });
    if let (Some(m), Value::Object(e)) = (s.as_object_mut(), extra) {
        m.extend(e);
    }
    s
}

/// The config object schema of `kind`: `key`, every field of its table, `link-sets`, `links`.
fn object_schema(kind: ObjectKind) -> Value {
    let mut props = Map::new();
    props.insert(
        "key".into(),
        json!({ "type": "string", "nullable": true, "description": format!(
            "{} joined by ':' (the URL's key is used; the body's is ignored)",
            kind.key_fields().join(", ")) }),
    );
    for spec in kind.fields() {
        props.insert(spec.name.into(), field_schema(spec));
    }
    if !kind.link_sets().is_empty() {
        let sets: Map<String, Value> = kind
            .link_sets()
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    nullable_object(json!({ "additionalProperties": link_ref() })),
                )
            })
            .collect();
        props.insert(
            "link-sets".into(),
            nullable_object(json!({ "properties": sets, "additionalProperties": true })),
        );
    }
    if !kind.links().is_empty() {
        let links: Map<String, Value> = kind
            .links()
            .iter()
            .map(|n| ((*n).to_owned(), link_ref()))
            .collect();
        props.insert(
            "links".into(),
            nullable_object(json!({ "properties": links, "additionalProperties": true })),
        );
    }
    let required: Vec<&str> = kind
        .fields()
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut schema = json!({ "type": "object", "properties": props, "additionalProperties": true });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The oper fields documented one by one (the others stay loosely typed, as Go's were).
fn oper_fields(kind: ObjectKind) -> Option<Value> {
    match kind {
        ObjectKind::ServiceLb => Some(json!({
            "serviceVip": { "type": "string", "description": "the service's virtual IP address" },
            "numProviders": { "type": "integer", "description": "endpoints whose labels match every selector" },
            "providers": { "type": "array", "description": "the provider endpoints",
                           "items": { "type": "object", "additionalProperties": true } },
        })),
        _ => None,
    }
}

/// `{Config, Oper}` as Go's `<Obj>Inspect` has them (Oper loosely typed but for [`oper_fields`]).
fn inspect_schema(kind: ObjectKind) -> Value {
    let mut props = Map::new();
    if kind.is_config() {
        props.insert("Config".into(), schema_ref(kind.type_name()));
    }
    if kind.has_oper() {
        let mut oper = json!({ "type": "object", "description": format!("runtime state of the {}", kind.type_name()),
                    "additionalProperties": true });
        if let Some(fields) = oper_fields(kind) {
            oper["properties"] = fields;
        }
        props.insert("Oper".into(), oper);
    }
    let required: Vec<&String> = props.keys().collect();
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": true })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem(description: &str) -> Value {
    json!({ "description": description,
            "content": { "application/problem+json": { "schema": schema_ref("Problem") } } })
}

fn error_responses() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "500".into(),
        json!({ "description": "Contiv-style error (default): the message as text/plain",
                "content": { "text/plain": { "schema": { "type": "string" } } } }),
    );
    m.insert(
        "400".into(),
        problem("invalid request (with Accept: application/problem+json)"),
    );
    m.insert(
        "404".into(),
        problem("not found (with Accept: application/problem+json)"),
    );
    m.insert(
        "409".into(),
        problem("conflict or resource exhausted (with Accept: application/problem+json)"),
    );
    m.insert(
        "503".into(),
        problem("state store unavailable (with Accept: application/problem+json)"),
    );
    m
}

fn json_ok(schema: Value) -> Value {
    json!({ "description": "OK", "content": { "application/json": { "schema": schema } } })
}

/// `200` with `schema` plus the error responses.
fn responses(schema: Value) -> Value {
    let mut r = error_responses();
    r.insert("200".into(), json_ok(schema));
    Value::Object(r)
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// `p` without its `^...$` anchors, when it is one anchored alternative (no top-level `|`).
fn unanchored(p: &str) -> Option<&str> {
    let inner = p.strip_prefix('^')?.strip_suffix('$')?;
    let (mut depth, mut escaped, mut in_class) = (0i32, false, false);
    for c in inner.chars() {
        match (escaped, in_class, c) {
            (true, _, _) => escaped = false,
            (false, _, '\\') => escaped = true,
            (false, false, '[') => in_class = true,
            (false, true, ']') => in_class = false,
            (false, false, '(') => depth += 1,
            (false, false, ')') => depth -= 1,
            (false, false, '|') if depth == 0 => return None,
            _ => {}
        }
    }
    Some(inner)
}

/// The `{key}` path parameter's schema: the key fields' patterns joined by `:` (a field without a
/// pattern matches anything), so generated keys can name objects that validate.
fn key_schema(kind: ObjectKind) -> Value {
    let parts: Option<Vec<String>> = kind
        .key_fields()
        .iter()
        .map(
            |name| match kind.fields().iter().find(|f| f.name == *name) {
                Some(spec) => match spec.pattern {
                    Some(p) => unanchored(p).map(|inner| format!("(?:{inner})")),
                    None => Some(".*".to_owned()),
                },
                None => None,
            },
        )
        .collect();
    match parts {
        Some(parts) => {
            json!({ "type": "string", "pattern": ecma_pattern(&format!("^{}$", parts.join(":"))) })
        }
        None => json!({ "type": "string" }),
    }
}

fn object_paths(kind: ObjectKind, paths: &mut Map<String, Value>) {
    let plural = kind.plural();
    let name = kind.type_name();
    let key_param = json!([{ "name": "key", "in": "path", "required": true,
        "description": format!("{} joined by ':'", kind.key_fields().join(", ")), "schema": key_schema(kind) }]);
    let inspect = json!({ "get": { "operationId": format!("inspect_{name}"), "parameters": key_param,
        "responses": responses(schema_ref(&format!("{name}Inspect"))) } });
    paths.insert(format!("/api/v1/inspect/{plural}/{{key}}/"), inspect);
    if !kind.is_config() {
        return;
    }
    let schema = schema_ref(name);
    paths.insert(
        format!("/api/v1/{plural}/"),
        json!({ "get": { "operationId": format!("list_{name}"),
                         "responses": responses(json!({ "type": "array", "items": schema })) } }),
    );
    let body = json_body(schema.clone());
    paths.insert(format!("/api/v1/{plural}/{{key}}/"), json!({
        "get": { "operationId": format!("get_{name}"), "parameters": key_param, "responses": responses(schema.clone()) },
        "post": { "operationId": format!("create_{name}"), "parameters": key_param, "requestBody": body, "responses": responses(schema.clone()) },
        "put": { "operationId": format!("update_{name}"), "parameters": key_param, "requestBody": body, "responses": responses(schema.clone()) },
        "delete": { "operationId": format!("delete_{name}"), "parameters": key_param,
                    "responses": responses(json!({ "type": "string", "description": "the deleted key" })) },
    }));
}

/// Member types of the hand-described plugin/agent bodies.
#[derive(Clone, Copy)]
enum Member {
    Str,
    Int,
    Labels,
    Ref(&'static str),
}

/// Plugin and agent bodies (`contiv-api`): name and members, as serialized.
const PLUGIN_SCHEMAS: &[(&str, &[(&str, Member)])] = &{
    use Member::*;
    [
        (
            "AllocAddressRequest",
            &[
                ("NetworkID", Str),
                ("AddressPool", Str),
                ("PreferredIPv4Address", Str),
            ],
        ),
        (
            "AllocAddressResponse",
            &[("NetworkID", Str), ("IPv4Address", Str)],
        ),
        (
            "ReleaseAddressRequest",
            &[("NetworkID", Str), ("IPv4Address", Str)],
        ),
        (
            "ConfigEP",
            &[
                ("Container", Str),
                ("Host", Str),
                ("IPAddress", Str),
                ("IPv6Address", Str),
                ("ServiceName", Str),
                ("IntfName", Str),
                ("VtepIP", Str),
                ("Labels", Labels),
                ("ContainerID", Str),
            ],
        ),
        (
            "CreateEndpointRequest",
            &[
                ("TenantName", Str),
                ("NetworkName", Str),
                ("ServiceName", Str),
                ("EndpointID", Str),
                ("EPCommonName", Str),
                ("ConfigEP", Ref("ConfigEP")),
            ],
        ),
        (
            "DeleteEndpointRequest",
            &[
                ("TenantName", Str),
                ("NetworkName", Str),
                ("ServiceName", Str),
                ("EndpointID", Str),
                ("IPv4Address", Str),
            ],
        ),
        (
            "UpdateEndpointRequest",
            &[
                ("IPAddress", Str),
                ("ContainerID", Str),
                ("Labels", Labels),
                ("Tenant", Str),
                ("Network", Str),
                ("Event", Str),
                ("EndpointID", Str),
                ("EPCommonName", Str),
            ],
        ),
        ("UpdateEndpointResponse", &[("IPAddress", Str)]),
        (
            "EndpointState",
            &[
                ("id", Str),
                ("netID", Str),
                ("endpointID", Str),
                ("serviceName", Str),
                ("endpointGroupId", Int),
                ("endpointGroupKey", Str),
                ("ipAddress", Str),
                ("ipv6Address", Str),
                ("macAddress", Str),
                ("homingHost", Str),
                ("intfName", Str),
                ("vtepIP", Str),
                ("labels", Labels),
                ("containerId", Str),
                ("epCommonName", Str),
                ("tenantName", Str),
                ("networkName", Str),
            ],
        ),
        (
            "EndpointResponse",
            &[("EndpointConfig", Ref("EndpointState")), ("revision", Int)],
        ),
        (
            "NodeInfo",
            &[
                ("hostname", Str),
                ("vtepIP", Str),
                ("datapath", Str),
                ("agentVersion", Str),
            ],
        ),
    ]
};

fn plugin_schema(members: &[(&str, Member)]) -> Value {
    let props: Map<String, Value> = members
        .iter()
        .map(|(name, m)| {
            let s = match m {
                Member::Str => json!({ "type": "string" }),
                Member::Int => json!({ "type": "integer", "format": "int64",
                                       "minimum": i64::MIN, "maximum": i64::MAX }),
                Member::Labels => {
                    json!({ "type": "object", "additionalProperties": { "type": "string" } })
                }
                Member::Ref(r) => schema_ref(r),
            };
            ((*name).to_owned(), s)
        })
        .collect();
    json!({ "type": "object", "properties": props, "additionalProperties": true })
}

fn post(op: &str, body: &str, ok: Value) -> Value {
    json!({ "post": { "operationId": op, "requestBody": json_body(schema_ref(body)), "responses": responses(ok) } })
}

fn plugin_paths(paths: &mut Map<String, Value>) {
    let ops = [
        (
            "allocAddress",
            "AllocAddressRequest",
            schema_ref("AllocAddressResponse"),
        ),
        (
            "releaseAddress",
            "ReleaseAddressRequest",
            json!({ "type": "string" }),
        ),
        (
            "createEndpoint",
            "CreateEndpointRequest",
            schema_ref("EndpointResponse"),
        ),
        (
            "deleteEndpoint",
            "DeleteEndpointRequest",
            schema_ref("EndpointResponse"),
        ),
        (
            "updateEndpoint",
            "UpdateEndpointRequest",
            schema_ref("UpdateEndpointResponse"),
        ),
        ("registerNode", "NodeInfo", schema_ref("NodeInfo")),
    ];
    for (op, body, ok) in ops {
        paths.insert(format!("/plugin/{op}"), post(op, body, ok));
    }
    let snapshot = json!({ "type": "object", "properties": {
        "revision": { "type": "integer", "minimum": 0 },
        "kvs": { "type": "array", "items": { "type": "object", "properties": {
            "key": { "type": "string" }, "value": {} } } } } });
    paths.insert(
        "/plugin/agentState".into(),
        json!({ "get": { "operationId": "agentState", "responses": responses(snapshot) } }),
    );
    let version = json!({ "type": "object", "properties": {
        "GitCommit": { "type": "string" }, "Version": { "type": "string" }, "BuildTime": { "type": "string" } } });
    paths.insert(
        "/version".into(),
        json!({ "get": { "operationId": "version", "responses": { "200": json_ok(version) } } }),
    );
    paths.insert("/info".into(), json!({ "get": { "operationId": "info", "responses": { "200": json_ok(json!({ "type": "object" })) } } }));
}

/// Users and tokens (`--auth`): Contiv auth_proxy's login plus refresh, key rotation, users and
/// LDAP group authorizations.
fn auth_paths(paths: &mut Map<String, Value>) {
    let token = json!({ "type": "object", "properties": { "token": { "type": "string" } } });
    let user = json!({ "type": "object", "properties": {
        "username": { "type": "string" }, "password": { "type": "string" },
        "role": { "type": "string", "enum": ["admin", "tenant-admin", "ops", "read-only"] },
        "tenants": { "type": "array", "items": { "type": "string" } } } });
    let body = |schema: &Value| json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    let login = json!({ "type": "object", "required": ["username", "password"], "properties": {
        "username": { "type": "string" }, "password": { "type": "string" } } });
    // Errors as everywhere else; 404 also when users are off (netmaster started without
    // --auth); 401 and 403 keep their status in Contiv style too (text/plain).
    let ok = |schema: Value| {
        let mut r = error_responses();
        r.insert("200".into(), json_ok(schema));
        for (code, what) in [
            ("401", "no valid credentials"),
            ("403", "not allowed for this user"),
        ] {
            r.insert(
                code.into(),
                json!({ "description": what, "content": {
                "application/problem+json": { "schema": schema_ref("Problem") },
                "text/plain": { "schema": { "type": "string" } } } }),
            );
        }
        Value::Object(r)
    };
    paths.insert(
        "/api/v1/auth_proxy/login/".into(),
        json!({ "post": { "operationId": "login",
        "requestBody": body(&login), "responses": ok(token.clone()) } }),
    );
    paths.insert(
        "/api/v1/auth_proxy/refresh/".into(),
        json!({ "post": { "operationId": "refreshToken",
        "description": "a fresh token for the one in X-Auth-Token", "responses": ok(token) } }),
    );
    paths.insert("/api/v1/auth_proxy/keys/rotate/".into(), json!({ "post": { "operationId": "rotateSigningKey",
        "description": "admin: a new token signing key; older tokens stay valid until they expire",
        "responses": ok(json!({ "type": "object", "properties": { "kid": { "type": "string" } } })) } }));
    paths.insert("/api/v1/auth_proxy/local_users/".into(), json!({
        "get": { "operationId": "listUsers", "responses": ok(json!({ "type": "array", "items": user })) },
        "post": { "operationId": "createUser", "requestBody": body(&user), "responses": ok(user.clone()) } }));
    paths.insert("/api/v1/auth_proxy/local_users/{name}/".into(), json!({
        "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
        "get": { "operationId": "getUser", "responses": ok(user.clone()) },
        "patch": { "operationId": "updateUser", "description": "a new password, or a role with its tenants",
            "requestBody": body(&user), "responses": ok(user.clone()) },
        "delete": { "operationId": "deleteUser", "responses": ok(json!({ "type": "object" })) } }));
    let authz = json!({ "type": "object", "required": ["principalName", "role"], "properties": {
        "authzUUID": { "type": "string", "readOnly": true },
        "principalName": { "type": "string", "description": "an LDAP group's DN" },
        "local": { "type": "boolean", "description": "always false (local users carry their role)" },
        "role": { "type": "string", "enum": ["admin", "tenant-admin", "ops", "read-only"] },
        "tenantName": { "type": "string", "description": "absent: every tenant" } } });
    paths.insert("/api/v1/auth_proxy/authorizations/".into(), json!({
        "get": { "operationId": "listAuthorizations", "responses": ok(json!({ "type": "array", "items": authz })) },
        "post": { "operationId": "createAuthorization", "description": "admin: the role an LDAP group gives its members",
            "requestBody": body(&authz), "responses": ok(authz.clone()) } }));
    paths.insert("/api/v1/auth_proxy/authorizations/{id}/".into(), json!({
        "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
        "get": { "operationId": "getAuthorization", "responses": ok(authz.clone()) },
        "delete": { "operationId": "deleteAuthorization", "responses": ok(json!({ "type": "object" })) } }));
}

/// Policy state routes (not Contiv's): agents' reports, each host's status, explain.
fn policy_paths(paths: &mut Map<String, Value>) {
    let obj = json!({ "type": "object" });
    paths.insert(
        "/plugin/policyReport".into(),
        json!({ "post": { "operationId": "policyReport",
        "requestBody": json_body(obj.clone()), "responses": responses(obj.clone()) } }),
    );
    paths.insert(
        "/api/v1/policyStatus/".into(),
        json!({ "get": { "operationId": "policyStatus",
        "responses": responses(obj.clone()) } }),
    );
    let params: Vec<Value> = [
        ("tenant", "tenant (default: default)"),
        ("from", "source: endpoint id, container name, container id or IPv4 address"),
        ("to", "destination: endpoint id, container name, container id or IPv4 address"),
        ("protocol", "tcp (default), udp, icmp or a protocol number"),
        ("port", "destination port (default 0: none)"),
    ]
    .iter()
    .map(|(name, d)| json!({ "name": name, "in": "query", "schema": { "type": "string" }, "description": d }))
    .collect();
    paths.insert(
        "/api/v1/policyExplain/".into(),
        json!({ "get": { "operationId": "policyExplain",
        "parameters": params, "responses": responses(obj) } }),
    );
}

/// Every component schema: objects, inspect envelopes, Link, Problem, plugin bodies.
fn schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    for kind in ObjectKind::ALL {
        if kind.is_config() {
            schemas.insert(kind.type_name().into(), object_schema(kind));
        }
        schemas.insert(format!("{}Inspect", kind.type_name()), inspect_schema(kind));
    }
    schemas.insert("Link".into(), nullable_object(json!({ "properties": {
        "type": { "type": "string", "nullable": true, "description": "type name of the linked object" },
        "key": { "type": "string", "nullable": true, "description": "key of the linked object" } },
        "additionalProperties": true })));
    schemas.insert("Problem".into(), json!({ "type": "object", "properties": {
        "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" } } }));
    for (name, members) in PLUGIN_SCHEMAS {
        schemas.insert((*name).into(), plugin_schema(members));
    }
    schemas
}

/// The document served at `/api/v1/openapi.json`.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for kind in ObjectKind::ALL {
        object_paths(kind, &mut paths);
    }
    plugin_paths(&mut paths);
    policy_paths(&mut paths);
    auth_paths(&mut paths);
    paths.insert("/api/v1/audit/".into(), crate::http::audit::openapi_path());
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Contiv netmaster API", "version": version,
                  "description": "Errors are HTTP 500 text/plain (Contiv's convention) unless the request sends \
                                  `Accept: application/problem+json`, which gives 400/404/409/503 problem documents. \
                                  Not listed: the streaming `GET /plugin/agentWatch`." },
        "paths": paths,
        "components": { "schemas": schemas() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_api::agent::NodeInfo;
    use contiv_api::plugin::*;
    use contiv_api::EndpointState;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        document("test")
    }

    fn schema<'a>(d: &'a Value, name: &str) -> &'a Value {
        &d["components"]["schemas"][name]
    }

    #[test]
    fn every_kind_has_its_paths() {
        let d = doc();
        let paths = d["paths"].as_object().expect("paths");
        for kind in ObjectKind::ALL {
            let p = kind.plural();
            let inspect = &paths[&format!("/api/v1/inspect/{p}/{{key}}/")];
            assert!(inspect["get"].is_object(), "{kind} inspect");
            let one = paths.get(&format!("/api/v1/{p}/{{key}}/"));
            let list = paths.get(&format!("/api/v1/{p}/"));
            if kind.is_config() {
                let one = one.expect("object path");
                for m in ["get", "post", "put", "delete"] {
                    assert!(one[m]["responses"]["200"].is_object(), "{kind} {m}");
                    assert!(one[m]["responses"]["400"].is_object(), "{kind} {m}");
                }
                assert_eq!(
                    one["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                    json!(format!("#/components/schemas/{}", kind.type_name()))
                );
                assert!(list.expect("list path")["get"].is_object(), "{kind} list");
            } else {
                assert!(one.is_none() && list.is_none(), "{kind} is inspect-only");
            }
        }
        for op in [
            "allocAddress",
            "releaseAddress",
            "createEndpoint",
            "deleteEndpoint",
            "updateEndpoint",
            "registerNode",
        ] {
            assert!(
                paths[&format!("/plugin/{op}")]["post"]["requestBody"].is_object(),
                "{op}"
            );
        }
    }

    /// Every field of every table is in its object schema with the table's constraints.
    #[test]
    fn object_schemas_describe_every_field() {
        let d = doc();
        let mut patterns = 0;
        for kind in ObjectKind::ALL.into_iter().filter(|k| k.is_config()) {
            let s = schema(&d, kind.type_name());
            assert_eq!(s["additionalProperties"], json!(true), "{kind}");
            let props = s["properties"].as_object().expect("properties");
            for spec in kind.fields() {
                let p = &props[spec.name];
                let ty = match spec.kind {
                    FieldKind::String => "string",
                    FieldKind::Int => "integer",
                    FieldKind::StringList => "array",
                };
                assert_eq!(p["type"], json!(ty), "{kind}.{}", spec.name);
                if let Some(src) = spec.pattern {
                    assert_eq!(
                        p["pattern"],
                        json!(ecma_pattern(src)),
                        "{kind}.{}",
                        spec.name
                    );
                    patterns += 1;
                }
                assert_eq!(
                    p.get("maxLength"),
                    spec.max_len.map(|n| json!(n)).as_ref(),
                    "{kind}.{}",
                    spec.name
                );
                assert_eq!(
                    p.get("nullable").is_some(),
                    !spec.required,
                    "{kind}.{}",
                    spec.name
                );
                if let Some(m) = spec.max {
                    assert_eq!(p["maximum"], json!(m));
                }
                if let Some(m) = spec.min {
                    assert_eq!(p["minimum"], json!(m));
                }
            }
            let required: BTreeSet<&str> = kind
                .fields()
                .iter()
                .filter(|f| f.required)
                .map(|f| f.name)
                .collect();
            let listed: BTreeSet<&str> = s["required"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(listed, required, "{kind} required");
            assert!(props.contains_key("key"));
            assert_eq!(
                props.contains_key("link-sets"),
                !kind.link_sets().is_empty(),
                "{kind}"
            );
            assert_eq!(
                props.contains_key("links"),
                !kind.links().is_empty(),
                "{kind}"
            );
            let inspect = schema(&d, &format!("{}Inspect", kind.type_name()));
            assert_eq!(
                inspect["properties"]["Config"]["$ref"],
                json!(format!("#/components/schemas/{}", kind.type_name()))
            );
            assert_eq!(
                inspect["properties"].get("Oper").is_some(),
                kind.has_oper(),
                "{kind}"
            );
        }
        assert!(patterns >= 50, "{patterns}");
        assert_eq!(
            schema(&d, "network")["properties"]["nwType"]["default"],
            json!("data")
        );
        assert_eq!(
            schema(&d, "rule")["properties"]["priority"]["default"],
            json!(1)
        );
        assert_eq!(
            schema(&d, "endpointInspect")["properties"].get("Config"),
            None
        );
    }

    fn keys_of<T: serde::Serialize>(v: &T) -> BTreeSet<String> {
        let j = serde_json::to_value(v).expect("encode");
        j.as_object().expect("object").keys().cloned().collect()
    }

    /// The hand-written plugin schemas name exactly what the `contiv-api` types serialize.
    #[test]
    fn plugin_schemas_match_the_api_types() {
        let d = doc();
        let ep = EndpointState::default();
        let cases: Vec<(&str, BTreeSet<String>)> = vec![
            (
                "AllocAddressRequest",
                keys_of(&AllocAddressRequest::default()),
            ),
            (
                "AllocAddressResponse",
                keys_of(&AllocAddressResponse {
                    network_id: String::new(),
                    ipv4_address: String::new(),
                }),
            ),
            (
                "ReleaseAddressRequest",
                keys_of(&ReleaseAddressRequest::default()),
            ),
            ("ConfigEP", keys_of(&ConfigEp::default())),
            (
                "CreateEndpointRequest",
                keys_of(&CreateEndpointRequest::default()),
            ),
            (
                "DeleteEndpointRequest",
                keys_of(&DeleteEndpointRequest::default()),
            ),
            (
                "UpdateEndpointRequest",
                keys_of(&UpdateEndpointRequest::default()),
            ),
            (
                "UpdateEndpointResponse",
                keys_of(&UpdateEndpointResponse {
                    ip_address: String::new(),
                }),
            ),
            ("EndpointState", keys_of(&ep)),
            (
                "EndpointResponse",
                keys_of(&EndpointResponse {
                    endpoint_config: ep.clone(),
                    revision: 1,
                }),
            ),
            ("NodeInfo", keys_of(&NodeInfo::default())),
        ];
        assert_eq!(cases.len(), PLUGIN_SCHEMAS.len());
        for (name, want) in cases {
            let props = schema(&d, name)["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<BTreeSet<_>>());
            assert_eq!(props, Some(want), "{name}");
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| collect_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn service_inspect_documents_its_oper_fields() {
        let doc = document("test");
        let oper =
            &doc["components"]["schemas"]["serviceLBInspect"]["properties"]["Oper"]["properties"];
        for field in ["serviceVip", "numProviders", "providers"] {
            assert!(oper.get(field).is_some(), "{field} missing: {oper}");
        }
    }

    #[test]
    fn every_ref_resolves() {
        let d = doc();
        let mut refs = Vec::new();
        collect_refs(&d, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            assert!(schema(&d, name).is_object(), "{r}");
        }
    }

    #[test]
    fn patterns_translate_to_ecma() {
        assert_eq!(ecma_pattern(r"^(\:[0-9a-f]{1,4})$"), "^(:[0-9a-f]{1,4})$");
        assert_eq!(ecma_pattern(r"^a(\-b)?[a-z\-]$"), r"^a(-b)?[a-z\-]$");
        assert_eq!(ecma_pattern(r"\A(?P<x>a)\.\z"), r"^(?<x>a)\.$");
        assert_eq!(ecma_pattern(r"^[]a]$"), r"^[\]a]$");
        assert_eq!(
            ecma_pattern(r"^(tcp|udp||[0-9]{1,3}?)$"),
            r"^(tcp|udp||[0-9]{1,3}?)$"
        );
        assert_eq!(unanchored("^(a|b)$"), Some("(a|b)"));
        assert_eq!(unanchored("^$|^a$"), None);
        let d = doc();
        let key =
            &d["paths"]["/api/v1/networks/{key}/"]["get"]["parameters"][0]["schema"]["pattern"];
        assert!(
            key.as_str()
                .is_some_and(|p| p.starts_with("^(?:") && p.contains("):(?:")),
            "{key}"
        );
    }
}
