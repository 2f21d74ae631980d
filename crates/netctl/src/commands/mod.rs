//! One module per command group; this file dispatches the parsed command line and holds the
//! helpers the groups share (request bodies without empty fields, tenant filtering, list output).

pub mod aci_gw;
pub mod app_profile;
pub mod audit;
pub mod authorization;
pub mod bgp;
pub mod cluster;
pub mod endpoint;
pub mod ext_contracts;
pub mod global;
pub mod group;
pub mod netprofile;
pub mod network;
mod password;
pub mod policy;
pub mod service;
pub mod tenant;
pub mod version;

use std::io::Write;

use serde_json::{Map, Value};

use crate::cli::{Cli, Command, ListFlags, OutputFlags};
use crate::client::{Client, ClientTls};
use crate::error::{Error, Result};
use crate::output;

/// What every command needs: where netmaster is.
pub struct Ctx {
    netmaster: String,
    tls: ClientTls,
}

impl Ctx {
    /// A context for the netmaster at `url`, plain HTTP or https with the system's defaults.
    pub fn new(url: &str) -> Self {
        Ctx::with_tls(url, ClientTls::default())
    }

    /// A context for the netmaster at `url` with TLS settings.
    pub fn with_tls(url: &str, tls: ClientTls) -> Self {
        Ctx {
            netmaster: url.to_string(),
            tls,
        }
    }

    /// A client of netmaster (fails only on an unusable URL or TLS file).
    pub fn client(&self) -> Result<Client> {
        Client::new(&self.netmaster, &self.tls)
    }
}

/// Runs one parsed command line, writing its normal output to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<()> {
    let tls = ClientTls {
        cacert: cli.cacert.clone(),
        insecure: cli.insecure,
    };
    let ctx = Ctx::with_tls(&cli.netmaster, tls);
    match &cli.command {
        Command::Bgp(cmd) => bgp::run(cmd, &ctx, out),
        Command::AciGw(cmd) => aci_gw::run(cmd, &ctx, out),
        Command::AppProfile(cmd) => app_profile::run(cmd, &ctx, out),
        Command::Endpoint(cmd) => endpoint::run(cmd, &ctx, out),
        Command::ExternalContracts(cmd) => ext_contracts::run(cmd, &ctx, out),
        Command::Global(cmd) => global::run(cmd, &ctx, out),
        Command::Group(cmd) => group::run(cmd, &ctx, out),
        Command::Netprofile(cmd) => netprofile::run(cmd, &ctx, out),
        Command::Network(cmd) => network::run(cmd, &ctx, out),
        Command::Policy(cmd) => policy::run(cmd, &ctx, out),
        Command::Service(cmd) => service::run(cmd, &ctx, out),
        Command::Tenant(cmd) => tenant::run(cmd, &ctx, out),
        Command::Version => version::run(&ctx, out),
        Command::Cluster { json } => cluster::run(*json, &ctx, out),
        Command::Audit(args) => audit::run(args, &ctx, out),
        Command::Login {
            username,
            password,
            password_stdin,
        } => {
            let password = match password {
                Some(p) => p.clone(),
                None => password::read(*password_stdin)?,
            };
            login(&ctx, username, Some(&password), out)
        }
        Command::Auth(crate::cli::AuthCmd::RotateKey) => {
            let answer = ctx.client()?.users_call("POST", "keys/rotate/", None)?;
            let kid = answer["kid"]
                .as_str()
                .ok_or_else(|| Error::invalid("netmaster answered no key id"))?;
            writeln!(out, "signing key {kid} is current")?;
            Ok(())
        }
        Command::Completion { shell } => completion(shell, out),
        Command::User(cmd) => user(cmd, &ctx, out),
        Command::Authorization(cmd) => authorization::run(cmd, &ctx, out),
        Command::Role {
            username,
            role,
            tenants,
        } => {
            let body = serde_json::json!({"role": role, "tenants": tenants});
            let u = ctx.client()?.users_call(
                "PATCH",
                &format!("local_users/{username}/"),
                Some(&body),
            )?;
            writeln!(out, "{u}")?;
            Ok(())
        }
    }
}

/// `netctl completion <shell>`: the clap_complete script on stdout.
fn completion(shell: &str, out: &mut dyn Write) -> Result<()> {
    let shell = Command::shell(shell).ok_or_else(|| {
        Error::invalid(format!("unsupported shell {shell}: use bash, zsh or fish"))
    })?;
    let mut cmd = crate::cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "netctl", &mut buf);
    out.write_all(&buf)?;
    Ok(())
}

/// `netctl login -u U [-p P]`: Contiv's auth_proxy login; the token goes to ~/.netctl/token.
fn login(ctx: &Ctx, user: &str, password: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let password = match password {
        Some(p) => p.to_owned(),
        None => password::read(false)?,
    };
    let body = serde_json::json!({"username": user, "password": password});
    let answer = ctx.client()?.login(&body)?;
    let token = answer["token"]
        .as_str()
        .ok_or_else(|| Error::invalid("netmaster answered no token"))?;
    let path = crate::client::save_token(token)?;
    writeln!(out, "logged in as {user}; token in {}", path.display())?;
    Ok(())
}

/// `netctl user create|ls|rm|passwd` over `/api/v1/auth_proxy/local_users/`.
fn user(cmd: &crate::cli::UserCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    use crate::cli::UserCmd;
    use serde_json::json;
    let c = ctx.client()?;
    let answer = match cmd {
        UserCmd::Create {
            username,
            password,
            role,
            tenants,
        } => c.users_call(
            "POST",
            "local_users/",
            Some(
                &json!({"username": username, "password": password, "role": role,
                "tenants": tenants}),
            ),
        )?,
        UserCmd::Ls => c.users_call("GET", "local_users/", None)?,
        UserCmd::Rm { username } => {
            c.users_call("DELETE", &format!("local_users/{username}/"), None)?
        }
        UserCmd::Passwd { username, password } => c.users_call(
            "PATCH",
            &format!("local_users/{username}/"),
            Some(&json!({"password": password})),
        )?,
    };
    if let Value::Array(users) = &answer {
        for u in users {
            let tenants: Vec<&str> = u["tenants"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            writeln!(
                out,
                "{}\t{}\t{}",
                u["username"].as_str().unwrap_or_default(),
                u["role"].as_str().unwrap_or_default(),
                tenants.join(",")
            )?;
        }
    }
    Ok(())
}

/// Joins key fields with ':' as Contiv does (`tenant:network`).
pub fn key(parts: &[&str]) -> String {
    parts.join(":")
}

/// A request body that, like Contiv's Go client (`omitempty`), leaves out empty strings, zero
/// numbers and empty lists.
#[derive(Default)]
pub struct Body(Map<String, Value>);

impl Body {
    pub fn new() -> Self {
        Body::default()
    }

    pub fn str(mut self, field: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.insert(field.to_string(), Value::from(value));
        }
        self
    }

    pub fn int(mut self, field: &str, value: i64) -> Self {
        if value != 0 {
            self.0.insert(field.to_string(), Value::from(value));
        }
        self
    }

    pub fn list(mut self, field: &str, values: &[String]) -> Self {
        if !values.is_empty() {
            self.0
                .insert(field.to_string(), Value::from(values.to_vec()));
        }
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// Fails with netmaster's message when the tenant does not exist (Contiv's list commands check).
pub fn ensure_tenant(client: &Client, tenant: &str) -> Result<()> {
    client.get("tenants", tenant).map(|_| ())
}

/// Keeps the objects of `tenant`, or all of them with `-a`.
pub fn filter_tenant(items: Vec<Value>, tenant: &str, all: bool) -> Vec<Value> {
    items
        .into_iter()
        .filter(|item| all || output::str_field(item, "tenantName") == tenant)
        .collect()
}

/// The common shape of a per-tenant `ls`: check the tenant, list, filter, then print JSON (`-j`),
/// names (`-q`) or the table made by `table`.
pub fn list_per_tenant(
    ctx: &Ctx,
    out: &mut dyn Write,
    plural: &str,
    flags: &ListFlags,
    name_field: &str,
    table: fn(&[Value]) -> String,
) -> Result<()> {
    let client = ctx.client()?;
    ensure_tenant(&client, &flags.tenant.tenant)?;
    let items = filter_tenant(client.list(plural)?, &flags.tenant.tenant, flags.all);
    print_list(out, &items, &flags.output, name_field, table)
}

/// Prints a list as JSON, names or a table.
pub fn print_list(
    out: &mut dyn Write,
    items: &[Value],
    flags: &OutputFlags,
    name_field: &str,
    table: fn(&[Value]) -> String,
) -> Result<()> {
    if flags.json {
        output::print_json(out, &Value::from(items.to_vec()))
    } else if flags.quiet {
        output::print_names(out, items, name_field)
    } else {
        out.write_all(table(items).as_bytes())?;
        Ok(())
    }
}

/// Prints an inspect answer (`{"Config":..,"Oper":..}`) as pretty JSON.
pub fn inspect(ctx: &Ctx, out: &mut dyn Write, plural: &str, key: &str) -> Result<()> {
    let value = ctx.client()?.inspect(plural, key)?;
    output::print_json(out, &value)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_omits_empty_values() {
        let body = Body::new()
            .str("a", "x")
            .str("b", "")
            .int("c", 0)
            .int("d", 7)
            .list("e", &[])
            .list("f", &["p".to_string()])
            .build();
        assert_eq!(body, json!({"a": "x", "d": 7, "f": ["p"]}));
    }

    #[test]
    fn tenant_filter() {
        let items = vec![json!({"tenantName": "a"}), json!({"tenantName": "b"})];
        assert_eq!(filter_tenant(items.clone(), "a", false).len(), 1);
        assert_eq!(filter_tenant(items, "a", true).len(), 2);
    }

    #[test]
    fn key_join() {
        assert_eq!(key(&["t", "p", "1"]), "t:p:1");
    }

    #[test]
    fn login_without_netmaster_fails_cleanly() {
        let ctx = Ctx::new("http://127.0.0.1:1");
        let mut out = Vec::new();
        assert!(login(&ctx, "u", Some("password"), &mut out).is_err());
        assert!(out.is_empty());
    }
}

#[cfg(test)]
mod completion_tests {
    use super::test_support::run_netctl;

    #[test]
    fn completion_scripts_are_generated() {
        for (shell, marker) in [
            ("bash", "_netctl()"),
            ("zsh", "#compdef netctl"),
            ("fish", "complete -c netctl"),
        ] {
            let (res, out) = run_netctl("http://unused:1", &["completion", shell]);
            assert!(res.is_ok(), "{res:?}");
            assert!(
                out.contains(marker),
                "{shell}: {}",
                &out[..out.len().min(200)]
            );
            assert!(out.contains("rule-add"), "{shell}");
        }
    }

    #[test]
    fn unreachable_netmaster_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let url = format!("http://127.0.0.1:{port}");
        let (res, _) = run_netctl(&url, &["tenant", "ls"]);
        let msg = res.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with(&format!("unable to connect to netmaster at {url}: ")),
            "{msg}"
        );
    }
}
