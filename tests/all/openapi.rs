//! The OpenAPI document against the live service: every documented response is produced
//! by real requests through the router and its body validated against the documented
//! schema, and everything the router serves is documented. The committed `openapi.json`
//! is the generated document; after a change to the API,
//! `cargo test --test all -- --ignored write_openapi_json` rewrites it.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::{Backend, TestApp, form};
use introspectd::admin::{self, NewClient, NewUser};
use introspectd::http::metadata::well_known_path;
use introspectd::http::openapi;
use introspectd::policy::pkce::challenge_of;
use introspectd::secret::Password;
use introspectd::vocabulary::TokenUse;
use serde_json::{Value, json};

/// Keywords the checker understands; a schema using any other fails the test, so the
/// document cannot promise more than is checked.
const KEYWORDS: [&str; 16] = [
    "$ref",
    "propertyNames",
    "oneOf",
    "allOf",
    "anyOf",
    "type",
    "enum",
    "const",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "description",
    "title",
    "format",
    "minimum",
];

/// A JSON Schema (2020-12) checker for the subset of keywords in [`KEYWORDS`], with
/// `$ref` resolved inside the document.
struct Schemas<'a> {
    doc: &'a Value,
}

impl Schemas<'_> {
    fn resolve<'v>(&'v self, value: &'v Value) -> &'v Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => {
                let pointer = pointer.strip_prefix('#').expect("local $ref");
                let target = self
                    .doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {pointer}"));
                self.resolve(target)
            }
            None => value,
        }
    }

    fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        let mut errors = Vec::new();
        let Some(keywords) = schema.as_object() else {
            return vec![format!("{at}: schema is not an object")];
        };
        for keyword in keywords.keys() {
            assert!(
                KEYWORDS.contains(&keyword.as_str()),
                "schema keyword {keyword:?} at {at} is not checked"
            );
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => panic!("{at}: bad type keyword"),
            };
            if !types.iter().any(|t| has_type(value, t)) {
                errors.push(format!("{at}: {value} is not of type {types:?}"));
                return errors;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                errors.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            let fits = match format {
                "int32" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "int64" => value.is_i64(),
                other => panic!("{at}: format {other} is not checked"),
            };
            if !fits && has_type(value, "integer") {
                errors.push(format!("{at}: {value} is not an {format}"));
            }
        }
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64) {
            if value.as_f64().is_some_and(|n| n < minimum) {
                errors.push(format!("{at}: {value} is below {minimum}"));
            }
        }
        if let Some(expected) = schema.get("const") {
            if expected != value {
                errors.push(format!("{at}: {value} is not {expected}"));
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap();
                if !object.contains_key(name) {
                    errors.push(format!("{at}: required {name} is missing"));
                }
            }
            if let Some(names) = schema.get("propertyNames") {
                for name in object.keys() {
                    let key = Value::from(name.as_str());
                    errors.extend(self.errors(names, &key, &format!("{at} key {name}")));
                }
            }
            for (name, field) in object {
                let at = format!("{at}.{name}");
                match (
                    properties.and_then(|p| p.get(name)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(sub), _) => errors.extend(self.errors(sub, field, &at)),
                    (None, Some(Value::Bool(false))) => {
                        errors.push(format!("{at}: not a documented property"));
                    }
                    (None, Some(sub @ Value::Object(_))) => {
                        errors.extend(self.errors(sub, field, &at));
                    }
                    (None, _) => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                errors.extend(self.errors(items, item, &format!("{at}[{i}]")));
            }
        }
        for (i, part) in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            errors.extend(self.errors(part, value, &format!("{at} allOf[{i}]")));
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(choices) = schema.get(keyword).and_then(Value::as_array) {
                let matching = choices
                    .iter()
                    .filter(|choice| self.errors(choice, value, at).is_empty())
                    .count();
                let ok = if exactly_one {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    errors.push(format!("{at}: {value} matches {matching} of {keyword}"));
                }
            }
        }
        errors
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn document() -> Value {
    serde_json::from_str(openapi::document()).expect("the document is JSON")
}

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

/// The operations of a path item, without its other fields (`servers`).
fn operations(item: &Value) -> impl Iterator<Item = (&String, &Value)> {
    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    item.as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| METHODS.contains(&key.as_str()))
}

/// The router serving `path`: the metrics listener's for a path documented on a server
/// of its own, the API's otherwise.
fn router_for<'a>(app: &'a TestApp, doc: &Value, path: &str) -> &'a Router {
    match doc["paths"].get(path).and_then(|item| item.get("servers")) {
        Some(servers) => {
            assert!(servers[0]["url"].as_str().unwrap().ends_with(":9464"));
            &app.metrics
        }
        None => &app.router,
    }
}

/// A request and its response seen on the wire.
struct Observed {
    method: Method,
    path: String,
    /// The request's query and body, and whether its body was a form.
    query: Option<String>,
    sent: Bytes,
    sent_type: Option<String>,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

async fn exchange(router: &Router, request: Request<Body>) -> Observed {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let sent_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let (parts, body) = request.into_parts();
    let sent = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let request = Request::from_parts(parts, Body::from(sent.clone()));
    let response = common::send(router, request).await;
    Observed {
        method,
        path,
        query,
        sent,
        sent_type,
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

fn request(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

fn introspection(authorization: &str, body: String) -> Request<Body> {
    form_post("/introspect", authorization, body)
}

fn form_post(path: &str, authorization: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, authorization)
        .body(Body::from(body))
        .unwrap()
}

/// A form posted by a browser holding `cookies`.
fn page_post(path: &str, cookies: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body))
        .unwrap()
}

fn page_get(path: &str, cookies: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap()
}

/// The cookies a response sets, as a browser sends them back.
fn cookies_of(seen: &Observed) -> String {
    seen.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value of a field of a page's forms; the `nth` one of that name.
fn field(seen: &Observed, name: &str, nth: usize) -> String {
    let body = String::from_utf8_lossy(&seen.body);
    let marker = format!("name=\"{name}\" value=\"");
    let at = body
        .match_indices(&marker)
        .nth(nth)
        .unwrap_or_else(|| panic!("no field {name} in {body}"))
        .0;
    body[at + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// The fields of a page's sign-in form, with `extra`.
fn sign_in_form(page: &Observed, extra: &[(&str, &str)]) -> String {
    let (request, csrf) = (field(page, "request", 0), field(page, "csrf_token", 0));
    let mut fields = vec![("request", request.as_str()), ("csrf_token", csrf.as_str())];
    fields.extend_from_slice(extra);
    form(&fields)
}

/// Every answer of the sign-in pages but the rate limiter's and the store's.
async fn sign_in_pages(app: &TestApp, seen: &mut Vec<Observed>) -> (String, String) {
    let redirect = "http://127.0.0.1:7777/cb";
    let new = NewClient {
        name: "web".to_owned(),
        auth_method: Some("none".to_owned()),
        redirect_uris: vec![redirect.to_owned()],
        ..NewClient::default()
    };
    let client_id = admin::create_client(&app.store, new, introspectd::token::now())
        .await
        .unwrap()
        .client_id;
    let password = "correct horse battery";
    let user = NewUser {
        username: "alice".to_owned(),
        email: None,
        name: None,
        password: Some(Password::new(password)),
    };
    admin::create_user(&app.store, user, 0).await.unwrap();
    let challenge = challenge_of(&"v".repeat(43));
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", redirect),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let authorize = format!("/authorize?{query}");
    let router = &app.router;
    let login = exchange(router, request(Method::GET, &authorize)).await;
    let browser = cookies_of(&login);
    let wrong = sign_in_form(
        &login,
        &[("username", "alice"), ("password", "wrong-wrong")],
    );
    let right = sign_in_form(&login, &[("username", "alice"), ("password", password)]);
    let forged = form(&[
        ("request", &field(&login, "request", 0)),
        ("csrf_token", "x"),
    ]);
    seen.push(exchange(router, page_post("/login", &browser, wrong)).await);
    seen.push(exchange(router, page_post("/login", &browser, forged.clone())).await);
    seen.push(exchange(router, page_post("/login", &browser, String::new())).await);
    let big = "request=".to_owned() + &"a".repeat(64 * 1024);
    seen.push(exchange(router, page_post("/login", &browser, big)).await);
    let signed_in = exchange(router, page_post("/login", &browser, right.clone())).await;
    // The browser cookie set again (now naming the user) replaces the first one.
    let cookies = cookies_of(&signed_in);
    let consent = exchange(router, page_get(&authorize, &cookies)).await;
    let allow = sign_in_form(&consent, &[("decision", "allow")]);
    seen.push(exchange(router, page_post("/consent", &cookies, forged)).await);
    seen.push(exchange(router, page_post("/consent", &cookies, String::new())).await);
    seen.push(exchange(router, page_post("/consent", &cookies, allow)).await);
    let sign_out = form(&[("csrf_token", &field(&consent, "csrf_token", 1))]);
    let forged_out = form(&[("csrf_token", "x")]);
    seen.push(exchange(router, page_post("/logout", &cookies, forged_out)).await);
    seen.push(exchange(router, page_post("/logout", &cookies, sign_out)).await);
    let mut unknown = query.replace(&client_id, "unknown");
    seen.push(
        exchange(
            router,
            request(Method::GET, &format!("/authorize?{unknown}")),
        )
        .await,
    );
    unknown = query.replace("response_type=code&", "");
    seen.push(
        exchange(
            router,
            request(Method::GET, &format!("/authorize?{unknown}")),
        )
        .await,
    );
    seen.extend([login, signed_in, consent]);
    for (method, path) in [
        (Method::POST, "/authorize"),
        (Method::GET, "/login"),
        (Method::GET, "/consent"),
        (Method::GET, "/logout"),
        (Method::GET, "/assets/introspectd.css"),
        (Method::POST, "/assets/introspectd.css"),
    ] {
        seen.push(exchange(router, request(method, path)).await);
    }
    (browser, right)
}

/// Every answer of the provider sign-in endpoints but the rate limiter's and the store's.
async fn provider_pages(app: &TestApp, browser: &str, login: &str, seen: &mut Vec<Observed>) {
    let router = &app.router;
    let start = "/login/provider/corp";
    let sent = exchange(router, page_post(start, browser, login.to_owned())).await;
    let to = sent.headers[header::LOCATION].to_str().unwrap().to_owned();
    let state = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let another = exchange(router, page_post(start, browser, login.to_owned())).await;
    let another_to = another.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let another_state = url::Url::parse(&another_to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let forged = login.replace("csrf_token=", "csrf_token=x");
    seen.push(exchange(router, page_post(start, browser, forged)).await);
    seen.push(exchange(router, page_post(start, browser, String::new())).await);
    let big = "request=".to_owned() + &"a".repeat(64 * 1024);
    seen.push(exchange(router, page_post(start, browser, big)).await);
    seen.push(exchange(router, request(Method::GET, start)).await);
    seen.extend([sent, another]);
    let callback = "/login/callback/corp";
    let denied = format!("{callback}?error=access_denied&state={state}");
    seen.push(exchange(router, page_get(&denied, browser)).await);
    // Another browser brings back this browser's state.
    let elsewhere = format!("{callback}?code=c&state={another_state}");
    let key = &app.state.signin.as_ref().unwrap().key;
    let other = introspectd::signin::binding::Browser::new().to_cookie(key);
    let other_browser = format!("introspectd_browser={other}");
    seen.push(exchange(router, page_get(&elsewhere, &other_browser)).await);
    seen.push(exchange(router, page_get(&format!("{callback}?code=c"), browser)).await);
    seen.push(exchange(router, request(Method::POST, callback)).await);
}

/// POST /register with a JSON body.
fn registration(body: Value) -> Request<Body> {
    Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The answer of the real binary to a registration without the initial access token it
/// requires: the token is read from the environment, which only a process of its own can
/// be given safely.
async fn registration_without_its_token(backend: Backend) -> Option<Observed> {
    use common::binary::{Server, command, http};
    let (db, _guard) = common::fresh_db(backend).await?;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path(), &db);
    cmd.env(
        "INTROSPECTD_REGISTRATION__INITIAL_ACCESS_TOKEN_ENV",
        "TEST_INITIAL_ACCESS_TOKEN",
    )
    .env(
        "TEST_INITIAL_ACCESS_TOKEN",
        "initial-access-token-0123456789",
    );
    let server = Server::start_with(cmd);
    let body = json!({"redirect_uris": ["https://app.example/cb"]}).to_string();
    let json = ("content-type", "application/json");
    let response = http(server.addr, "POST", "/register", &[json], &body).await;
    server.stop();
    Some(Observed {
        method: Method::POST,
        path: "/register".to_owned(),
        query: None,
        sent: Bytes::from(body),
        sent_type: Some("application/json".to_owned()),
        status: StatusCode::from_u16(response.status).unwrap(),
        headers: response.headers,
        body: Bytes::from(response.text),
    })
}

/// The operation documenting `(path, method)`.
fn operation<'d>(doc: &'d Value, path: &str, method: &Method) -> Option<&'d Value> {
    doc["paths"]
        .get(path)?
        .get(method.as_str().to_ascii_lowercase())
}

/// Checks one live response against its documented response; returns what it covered.
fn check(doc: &Value, seen: &Observed) -> (String, String, String) {
    let schemas = Schemas { doc };
    let what = format!("{} {} -> {}", seen.method, seen.path, seen.status);
    // A 405 answers a method the path does not take; it is documented on the operation
    // the path does take.
    let (method, op) = match operation(doc, &seen.path, &seen.method) {
        Some(op) => (seen.method.as_str().to_ascii_lowercase(), op),
        None if seen.status == StatusCode::METHOD_NOT_ALLOWED => {
            let mut ops = operations(&doc["paths"][&seen.path]);
            let (method, op) = ops.next().unwrap();
            assert!(
                ops.next().is_none(),
                "{what}: which operation documents the 405?"
            );
            (method.clone(), op)
        }
        None => panic!("{what}: operation not documented"),
    };
    // A request the service accepted is one the document describes; a redirect that
    // carries an error back to a client is a refusal.
    let refused_by_redirect = seen
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.contains("error="));
    if seen.status.is_success() || (seen.status.is_redirection() && !refused_by_redirect) {
        check_request(&schemas, op, seen, &what);
    }
    let documented = op["responses"]
        .get(seen.status.as_str())
        .unwrap_or_else(|| panic!("{what}: status not documented"));
    let documented = schemas.resolve(documented);
    for (name, spec) in documented
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let spec = schemas.resolve(spec);
        let value = seen
            .headers
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{what}: documented header {name} is missing"))
            .to_str()
            .unwrap();
        let value = match spec["schema"]["type"].as_str() {
            Some("integer") => Value::from(value.parse::<i64>().expect("integer header")),
            _ => Value::from(value),
        };
        let errors = schemas.errors(&spec["schema"], &value, &format!("header {name}"));
        assert!(errors.is_empty(), "{what}: {errors:?}");
    }
    let Some(content) = documented["content"].as_object() else {
        assert!(
            seen.body.is_empty(),
            "{what}: a body where none is documented"
        );
        return (seen.path.clone(), method, seen.status.as_str().to_owned());
    };
    let content_type = seen.headers[header::CONTENT_TYPE].to_str().unwrap();
    let essence = content_type.split(';').next().unwrap().trim();
    let media = content
        .get(essence)
        .unwrap_or_else(|| panic!("{what}: content type {content_type} not documented"));
    let body: Value = if essence == "application/json" || essence.ends_with("+json") {
        serde_json::from_slice(&seen.body).unwrap_or_else(|_| panic!("{what}: body is not JSON"))
    } else {
        Value::from(String::from_utf8(seen.body.to_vec()).expect("text body"))
    };
    let errors = schemas.errors(&media["schema"], &body, "body");
    assert!(errors.is_empty(), "{what}: {errors:?}\n{body}");
    (seen.path.clone(), method, seen.status.as_str().to_owned())
}

/// Form-encoded parameters as the JSON object the document describes: a repeated name,
/// or one whose property is an array, as an array.
fn form_as_json(schemas: &Schemas, schema: &Value, encoded: &[u8]) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(encoded) {
        if value.is_empty() {
            continue;
        }
        let value = Value::from(value.into_owned());
        match object.get_mut(name.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                let array = property_is_array(schemas, schema, &name);
                let value = if array {
                    Value::Array(vec![value])
                } else {
                    value
                };
                object.insert(name.into_owned(), value);
            }
        }
    }
    Value::Object(object)
}

/// Whether any branch of `schema` describes `name` as an array.
fn property_is_array(schemas: &Schemas, schema: &Value, name: &str) -> bool {
    let schema = schemas.resolve(schema);
    if schema["properties"][name]["type"] == "array" {
        return true;
    }
    ["oneOf", "anyOf", "allOf"].iter().any(|keyword| {
        schema[keyword]
            .as_array()
            .into_iter()
            .flatten()
            .any(|branch| property_is_array(schemas, branch, name))
    })
}

/// Checks an accepted request against the operation's documented request: its body
/// against the request body's schema, its query against the query parameters.
fn check_request(schemas: &Schemas, op: &Value, seen: &Observed, what: &str) {
    if let Some(content) = op["requestBody"]["content"].as_object() {
        let sent_type = seen.sent_type.as_deref().unwrap_or("");
        let essence = sent_type.split(';').next().unwrap().trim();
        let media = content
            .get(essence)
            .unwrap_or_else(|| panic!("{what}: accepted a body of type {sent_type:?}"));
        let body = match essence {
            "application/json" => serde_json::from_slice(&seen.sent).unwrap(),
            _ => form_as_json(schemas, &media["schema"], &seen.sent),
        };
        let errors = schemas.errors(&media["schema"], &body, "request body");
        assert!(errors.is_empty(), "{what}: {errors:?}\n{body}");
    }
    let documented: Vec<&Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .collect();
    let sent: Vec<String> =
        url::form_urlencoded::parse(seen.query.as_deref().unwrap_or("").as_bytes())
            .map(|(name, _)| name.into_owned())
            .collect();
    for name in &sent {
        assert!(
            documented.iter().any(|p| p["name"] == name.as_str()),
            "{what}: accepted the undocumented query parameter {name}"
        );
    }
    for parameter in documented.iter().filter(|p| p["required"] == true) {
        let name = parameter["name"].as_str().unwrap();
        assert!(
            sent.iter().any(|s| s == name),
            "{what}: accepted without the required query parameter {name}"
        );
    }
}

/// Every (path, method, status) the document promises.
fn documented_responses(doc: &Value) -> BTreeSet<(String, String, String)> {
    let mut all = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations(item) {
            for status in op["responses"].as_object().unwrap().keys() {
                all.insert((path.clone(), method.clone(), status.clone()));
            }
        }
    }
    all
}

async fn live_responses_match_the_document(app: TestApp) {
    let doc = document();
    let metadata = well_known_path(&app.config.issuer);
    let api = app.client("api", &["https://api.example"]).await;
    let owner = app.app_client("app", "", &[]).await;
    let jwt = app.jwt_for(&owner, &["https://api.example"]).await;
    let refresh = app.opaque_for(&owner, TokenUse::RefreshToken).await;
    let spare = app.opaque_for(&owner, TokenUse::RefreshToken).await;
    let unseen = app.opaque_for(&owner, TokenUse::AccessToken).await;
    let revocable = app.jwt_for(&owner, &[]).await;
    let mut signed = introspection(&api.basic(), form(&[("token", &jwt)]));
    signed.headers_mut().insert(
        header::ACCEPT,
        "application/token-introspection+jwt".parse().unwrap(),
    );

    let mut seen = Vec::new();
    let token = |t: &str| form(&[("token", t)]);
    let big = "token=".to_owned() + &"a".repeat(64 * 1024);
    for request in [
        signed,
        form_post(
            "/token",
            &owner.basic(),
            form(&[("grant_type", "client_credentials")]),
        ),
        form_post(
            "/token",
            &owner.basic(),
            form(&[("grant_type", "password")]),
        ),
        form_post(
            "/token",
            &common::basic(&owner.id, "wrong"),
            form(&[("grant_type", "client_credentials")]),
        ),
        // A resource server registered only to introspect mints nothing.
        form_post(
            "/token",
            &api.basic(),
            form(&[("grant_type", "client_credentials")]),
        ),
        form_post("/token", &owner.basic(), big.clone()),
        request(Method::GET, "/token"),
        form_post("/revoke", &owner.basic(), token(&revocable)),
        form_post("/revoke", &api.basic(), token(&refresh)),
        form_post(
            "/revoke",
            &owner.basic(),
            form(&[("token_type_hint", "access_token")]),
        ),
        form_post(
            "/revoke",
            &common::basic(&owner.id, "wrong"),
            token(&refresh),
        ),
        form_post("/revoke", &owner.basic(), big.clone()),
        request(Method::GET, "/revoke"),
        request(Method::GET, "/jwks"),
        request(Method::POST, "/jwks"),
        introspection(&api.basic(), token(&jwt)),
        introspection(&owner.basic(), token(&refresh)),
        introspection(&api.basic(), token(&refresh)),
        introspection(&api.basic(), form(&[("token_type_hint", "access_token")])),
        introspection(&common::basic(&api.id, "wrong"), token(&jwt)),
        introspection(&api.basic(), "token=".to_owned() + &"a".repeat(64 * 1024)),
        request(Method::GET, "/introspect"),
        request(Method::GET, &metadata),
        request(Method::POST, &metadata),
        request(Method::GET, "/healthz"),
        request(Method::DELETE, "/healthz"),
        request(Method::GET, "/readyz"),
        request(Method::POST, "/readyz"),
        request(Method::GET, "/metrics"),
        request(Method::PUT, "/metrics"),
        request(Method::GET, "/openapi.json"),
        request(Method::POST, "/openapi.json"),
        registration(json!({"redirect_uris": ["https://app.example/cb"]})),
        registration(json!({"redirect_uris": ["https://app.example/cb"], "scope": 7})),
        registration(json!({"redirect_uris": ["http://app.example/cb"]})),
        registration(json!({"redirect_uris": [], "x": "a".repeat(64 * 1024)})),
        request(Method::GET, "/register"),
    ] {
        let router = router_for(&app, &doc, request.uri().path());
        seen.push(exchange(router, request).await);
    }
    let active: Vec<&Observed> = seen
        .iter()
        .filter(|s| s.path == "/introspect" && s.status == StatusCode::OK)
        .collect();
    assert_eq!(active.len(), 4);
    let (browser, login) = sign_in_pages(&app, &mut seen).await;
    let signin = app.state.signin.as_ref().unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        signin.providers.get("corp").unwrap().wait_available(),
    )
    .await
    .expect("the provider is discovered");
    provider_pages(&app, &browser, &login, &mut seen).await;

    // Rate limited: the same router with a limiter that allows one request at once.
    let (_, limited_router) = {
        let mut config = app.config.clone();
        config.rate_limit.enabled = true;
        config.rate_limit.per_second = 1;
        config.rate_limit.burst = 1;
        config.rate_limit.metadata_per_second = 1;
        config.rate_limit.metadata_burst = 1;
        let store = introspectd::store::Store::connect(&config).await.unwrap();
        let state = introspectd::http::AppState::build(config, store.clone())
            .await
            .unwrap();
        (store, introspectd::http::router(state))
    };
    let posted = [
        "/register",
        "/introspect",
        "/token",
        "/revoke",
        "/login",
        "/consent",
        "/logout",
        "/login/provider/corp",
    ];
    for path in [
        "/register",
        "/introspect",
        "/token",
        "/revoke",
        metadata.as_str(),
        "/jwks",
        "/openapi.json",
        "/authorize",
        "/login",
        "/consent",
        "/logout",
        "/assets/introspectd.css",
        "/login/provider/corp",
        "/login/callback/corp",
    ] {
        let method = if posted.contains(&path) {
            Method::POST
        } else {
            Method::GET
        };
        let mut refused = None;
        for _ in 0..10 {
            let response = exchange(&limited_router, request(method.clone(), path)).await;
            if response.status == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(response);
                break;
            }
        }
        seen.push(refused.unwrap_or_else(|| panic!("{path} was never rate limited")));
    }

    // The store goes away last. The caches answer what they hold (the client records);
    // what needs the store gets 503.
    app.store.close().await;
    seen.push(exchange(&app.router, introspection(&owner.basic(), token(&unseen))).await);
    let exchange_refresh = form(&[("grant_type", "refresh_token"), ("refresh_token", &spare)]);
    seen.push(
        exchange(
            &app.router,
            form_post("/token", &owner.basic(), exchange_refresh),
        )
        .await,
    );
    seen.push(
        exchange(
            &app.router,
            form_post("/revoke", &owner.basic(), token(&spare)),
        )
        .await,
    );
    seen.push(exchange(&app.router, request(Method::GET, "/readyz")).await);
    seen.push(exchange(&app.router, page_post("/login", &browser, login.clone())).await);
    let start = page_post("/login/provider/corp", &browser, login);
    seen.push(exchange(&app.router, start).await);
    let callback = page_get("/login/callback/corp?code=c&state=s", &browser);
    seen.push(exchange(&app.router, callback).await);
    let unknown = "/authorize?response_type=code&client_id=unseen";
    seen.push(exchange(&app.router, request(Method::GET, unknown)).await);
    let valid = json!({"redirect_uris": ["https://app.example/cb"]});
    seen.push(exchange(&app.router, registration(valid)).await);
    seen.extend(registration_without_its_token(app.backend).await);

    // Metadata is documented at its path for an issuer without a path; the provider
    // endpoints at their templates.
    for s in &mut seen {
        if s.path == metadata {
            s.path = "/.well-known/oauth-authorization-server".to_owned();
        }
        for template in ["/login/provider/{id}", "/login/callback/{id}"] {
            if s.path.starts_with(template.trim_end_matches("{id}")) {
                s.path = template.to_owned();
            }
        }
    }
    let covered: BTreeSet<_> = seen.iter().map(|s| check(&doc, s)).collect();
    let documented = documented_responses(&doc);
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}

/// The live document test, with a provider in `[[login.providers]]`.
async fn live_responses(backend: Backend) {
    // A provider that publishes its metadata and keys: enough to be discovered and sent
    // to; never reached by a browser here.
    let issuer = common::idp::IdentityProvider::start().await.issuer;
    let provider = introspectd::config::ProviderConfig {
        id: "corp".to_owned(),
        name: "Corp".to_owned(),
        issuer,
        client_id: "introspectd".to_owned(),
        client_secret: Some(introspectd::secret::ProviderSecret::new("secret")),
        client_secret_env: None,
        scopes: vec!["openid".to_owned()],
        allowed_email_domains: Vec::new(),
        id_jag: false,
    };
    let adjust = |c: &mut introspectd::config::Config| c.login.providers = vec![provider];
    common::run_with(backend, adjust, live_responses_match_the_document).await;
}

mod live_responses_match_the_document {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::live_responses(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::live_responses(super::Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_the_router_answers_is_documented() {
    let Some(app) = TestApp::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let doc = document();
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            let router = router_for(&app, &doc, path);
            let seen = exchange(router, request(method.clone(), path)).await;
            assert_ne!(seen.status, StatusCode::NOT_FOUND, "{path} is not served");
            if seen.status != StatusCode::METHOD_NOT_ALLOWED {
                assert!(
                    operation(&doc, path, &method).is_some(),
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

/// The first argument of every `.route(` call in the sources.
fn routed_paths(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(routed_paths(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for call in text.split(".route(").skip(1) {
                let first = call.split(',').next().unwrap().trim();
                found.push(first.to_owned());
            }
        }
    }
    found
}

/// The value of a `&str` path constant named in a `.route(` call: `module::PATH` is read
/// from `src/http/module.rs`, a bare `NAME` from `src/http/mod.rs`.
fn path_constant(src: &Path, constant: &str) -> String {
    let (file, name) = match constant.split_once("::") {
        Some((module, name)) => (src.join("http").join(format!("{module}.rs")), name),
        None => (src.join("http/mod.rs"), constant),
    };
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|_| panic!("route {constant}: no {}", file.display()));
    let declaration = format!("const {name}: &str = \"");
    let value = text
        .split(&declaration)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("route {constant} is neither a literal nor a path constant"));
    value.to_owned()
}

#[test]
fn every_route_in_the_sources_is_documented() {
    let doc = document();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let routes = routed_paths(&src);
    assert!(routes.iter().any(|r| r == "&path"), "{routes:?}");
    for route in routes {
        let documented = match route.as_str() {
            // The endpoint table: each path is the one its handler documents, but the
            // metadata document's, which follows the issuer (RFC 8414 §3.1).
            "&path" => continue,
            literal if literal.starts_with('"') => literal.trim_matches('"').to_owned(),
            constant => path_constant(&src, constant),
        };
        assert!(
            doc["paths"].get(&documented).is_some(),
            "route {route} is not in openapi.json"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_generated_one() {
    let Some(app) = TestApp::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let seen = exchange(&app.router, request(Method::GET, "/openapi.json")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body, openapi::document().as_bytes());
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
}

#[test]
fn committed_openapi_json_is_the_generated_document() {
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == openapi::document(),
        "openapi.json differs from the document the code generates; rewrite it with \
         `cargo test --test all -- --ignored write_openapi_json` and review the diff"
    );
}

/// Rewrites `openapi.json` from the code (run on purpose, never by CI).
#[test]
#[ignore = "writes openapi.json"]
fn write_openapi_json() {
    std::fs::write(committed_path(), openapi::document()).unwrap();
}

#[test]
fn checker_rejects_what_the_schema_forbids() {
    let doc = document();
    let schemas = Schemas { doc: &doc };
    let response = serde_json::json!({"$ref": "#/components/schemas/IntrospectionResponse"});
    let ok = |v: Value| schemas.errors(&response, &v, "body").is_empty();
    assert!(ok(serde_json::json!({"active": false})));
    assert!(!ok(serde_json::json!({"active": false, "scope": "x"})));
    assert!(!ok(serde_json::json!({"active": true})));
    assert!(ok(serde_json::json!({
        "active": true, "client_id": "c", "token_use": "access_token",
        "exp": 2, "iat": 1, "jti": "j", "aud": ["a", "b"]
    })));
    assert!(!ok(serde_json::json!({
        "active": true, "client_id": "c", "token_use": "id_token",
        "exp": 2, "iat": 1, "jti": "j"
    })));
    assert!(!ok(serde_json::json!({
        "active": true, "client_id": "c", "token_use": "access_token",
        "exp": 2, "iat": 1, "jti": "j", "aud": 3
    })));
}
