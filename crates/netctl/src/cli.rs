//! The command line: Contiv netctl's command tree as clap types, the flags shared by several
//! commands, and the rewrite of Go-style single-dash long flags (`-s6`, `-tag`, `-tenant x`).

use std::ffi::OsString;
use std::sync::OnceLock;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use crate::client::DEFAULT_NETMASTER;
use crate::commands::{
    aci_gw::AciGwCmd, app_profile::AppProfileCmd, bgp::BgpCmd, endpoint::EndpointCmd,
    ext_contracts::ExtContractsCmd, global::GlobalCmd, group::GroupCmd, netprofile::NetprofileCmd,
    network::NetworkCmd, policy::PolicyCmd, service::ServiceCmd, tenant::TenantCmd,
};

/// Text of `netctl -v`: like Contiv, "netctl version " followed by the client's version block.
fn version_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "version \n{}",
            crate::commands::version::client_version_block().trim_end()
        )
    })
}

/// The clap command tree, with the runtime version text.
pub fn command() -> clap::Command {
    Cli::command().version(version_text())
}

/// `netctl [global options] command [command options] [arguments...]`
#[derive(Parser, Debug)]
#[command(
    name = "netctl",
    about = "A command line client for Contiv netplugin",
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The hostname of the netmaster
    #[arg(long, global = true, env = "NETMASTER", default_value = DEFAULT_NETMASTER)]
    pub netmaster: String,

    /// if true, strict certificate checking will be disabled
    #[arg(long, global = true, env = "INSECURE")]
    pub insecure: bool,

    /// CA certificate (PEM) that signed netmaster's certificate, for an https:// netmaster
    #[arg(long, global = true, env = "CONTIV_CACERT")]
    pub cacert: Option<std::path::PathBuf>,

    /// print the version
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    #[command(subcommand)]
    pub command: Command,
}

/// `netctl user ...`
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// create a user (read-only unless --role)
    Create {
        username: String,
        #[arg(short = 'p', long)]
        password: String,
        #[arg(short = 'r', long, default_value = "read-only")]
        role: String,
        #[arg(short = 't', long = "tenant")]
        tenants: Vec<String>,
    },
    /// list users
    Ls,
    /// remove a user
    Rm { username: String },
    /// set a user's password
    Passwd {
        username: String,
        #[arg(short = 'p', long)]
        password: String,
    },
}

/// `netctl auth ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AuthCmd {
    /// make a new token signing key current (tokens signed by older keys stay valid until they
    /// expire)
    RotateKey,
}

/// `netctl authorization ...`: which role an LDAP group gives its members.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationCmd {
    /// authorize an LDAP group (its DN) for a role, in one tenant or every tenant
    Create {
        /// the group's DN, e.g. cn=ops,ou=groups,dc=example,dc=com
        group: String,
        /// admin, tenant-admin, ops or read-only
        #[arg(short = 'r', long)]
        role: String,
        /// the tenant (needed for tenant-admin; none: every tenant)
        #[arg(short = 't', long)]
        tenant: Option<String>,
    },
    /// list authorizations
    Ls {
        /// Output list in JSON format
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// remove an authorization by its id
    Rm { id: String },
}

/// The command groups, as in Contiv's netctl.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// ACI Gateway information
    #[command(subcommand)]
    AciGw(AciGwCmd),
    /// Application Profile manipulation tools
    #[command(subcommand)]
    AppProfile(AppProfileCmd),
    /// router capability configuration
    #[command(subcommand)]
    Bgp(BgpCmd),
    /// netmaster's audit log: every write and refused call (admin, or a tenant-admin for its
    /// tenants)
    Audit(crate::commands::audit::AuditArgs),
    /// The netmasters (who leads), the registered agents and the state store
    Cluster {
        /// JSON output (netmaster's /info)
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Print a shell completion script
    Completion {
        /// bash, zsh or fish
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Endpoint Inspection
    #[command(subcommand, visible_alias = "ep")]
    Endpoint(EndpointCmd),
    /// External contracts
    #[command(subcommand)]
    ExternalContracts(ExtContractsCmd),
    /// Global information
    #[command(subcommand)]
    Global(GlobalCmd),
    /// Endpoint Group manipulation tools
    #[command(subcommand)]
    Group(GroupCmd),
    /// log in to netmaster (--auth): the token is kept in ~/.netctl/token (0600) and sent
    /// as X-Auth-Token by every later command
    Login {
        /// user name
        #[arg(short = 'u', long)]
        username: String,
        /// password (visible to other users in the process list: prefer the prompt, or
        /// --password-stdin)
        #[arg(short = 'p', long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// read the password from stdin's first line, without a prompt (scripts)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Token signing keys of netmaster --auth (admin only)
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Local users of netmaster --auth (admin only)
    #[command(subcommand)]
    User(UserCmd),
    /// LDAP/AD groups' roles (admin only)
    #[command(subcommand)]
    Authorization(AuthorizationCmd),
    /// Grant a user a role (and its tenants)
    Role {
        /// user name
        username: String,
        /// admin, tenant-admin, ops or read-only
        role: String,
        /// tenants the role applies to (none: every tenant)
        #[arg(short = 't', long = "tenant")]
        tenants: Vec<String>,
    },
    /// Network profile manipulation tools
    #[command(subcommand)]
    Netprofile(NetprofileCmd),
    /// Network manipulation tools
    #[command(subcommand, visible_alias = "net")]
    Network(NetworkCmd),
    /// Policy manipulation tools
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// service object creation (only for  docker version <= 1.12.x)
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Tenant manipulation tools
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Version Information
    Version,
}

impl Command {
    /// The completion shell named on the command line.
    pub fn shell(name: &str) -> Option<Shell> {
        match name {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            _ => None,
        }
    }
}

/// `-t, --tenant` (default "default").
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct TenantFlag {
    /// Name of the tenant
    #[arg(short = 't', long, default_value = "default")]
    pub tenant: String,
}

/// `-j, --json` and `-q, --quiet` of the list commands.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputFlags {
    /// Output list in JSON format
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Only display name field
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The flags of a per-tenant list: `-t`, `-a`, `-j`, `-q`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ListFlags {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// List all items
    #[arg(short = 'a', long)]
    pub all: bool,
    #[command(flatten)]
    pub output: OutputFlags,
}

/// `-t`, `-a`, `-j` of the `info` commands (tenant and all are accepted and unused, as in Contiv).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct InfoFlags {
    #[command(flatten)]
    pub tenant: TenantFlag,
    /// List all items
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Output list in JSON format
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// Parses a command line (after [`normalize_args`]).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(normalize_args(args))?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// Rewrites Go-style single-dash long flags into clap's double-dash form.
///
/// Contiv's netctl used Go's flag package, where `-s6`, `-tag`, `-ip` and `-tenant` name one flag
/// each. A single-dash token whose name (before any `=`) is a long flag or alias of the command
/// being parsed becomes `--name`; anything else is left for clap (`-s 10.1.1.0/24`, `-s10.0.0.0/8`).
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let root = Cli::command();
    let mut current = &root;
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    let mut rest_verbatim = false;
    for arg in iter {
        let text = match arg.to_str() {
            Some(text) if !rest_verbatim => text.to_string(),
            _ => {
                out.push(arg);
                continue;
            }
        };
        if text == "--" {
            rest_verbatim = true;
        } else if let Some(body) = text.strip_prefix('-').filter(|b| !b.starts_with('-')) {
            let name = body.split('=').next().unwrap_or(body);
            if name.chars().count() > 1 && (is_long(current, name) || is_long(&root, name)) {
                out.push(OsString::from(format!("-{text}")));
                continue;
            }
        } else if let Some(sub) = current.find_subcommand(&text) {
            current = sub;
        }
        out.push(arg);
    }
    out
}

fn is_long(cmd: &clap::Command, name: &str) -> bool {
    cmd.get_arguments().any(|arg| {
        arg.get_long() == Some(name)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(OsString::from).collect();
        normalize_args(args)
            .into_iter()
            .map(|a| a.to_string_lossy().to_string())
            .collect()
    }

    #[test]
    fn command_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn go_style_flags_are_rewritten() {
        assert_eq!(
            normalized(&[
                "netctl",
                "-netmaster",
                "http://x",
                "net",
                "create",
                "-s6",
                "a",
                "-tag=b",
                "-s",
                "c",
                "n"
            ]),
            [
                "netctl",
                "--netmaster",
                "http://x",
                "net",
                "create",
                "--s6",
                "a",
                "--tag=b",
                "-s",
                "c",
                "n"
            ]
        );
        // Not a long flag of `policy rule-add`: left for clap's short-flag parsing.
        assert_eq!(
            normalized(&["netctl", "policy", "rule-add", "-s6"])[3],
            "-s6"
        );
        assert_eq!(
            normalized(&["netctl", "tenant", "create", "--", "-tenant"])[4],
            "-tenant"
        );
    }

    #[test]
    fn global_flags_and_defaults() {
        let cli = parse(["netctl", "tenant", "ls"]).ok();
        let netmaster = cli.map(|c| c.netmaster);
        // NETMASTER may be set in the environment running the tests.
        let expected = std::env::var("NETMASTER").unwrap_or_else(|_| DEFAULT_NETMASTER.to_string());
        assert_eq!(netmaster, Some(expected));
        let cli = parse(["netctl", "tenant", "ls", "--netmaster", "http://h:1"]).ok();
        assert_eq!(cli.map(|c| c.netmaster).as_deref(), Some("http://h:1"));
        let cli = parse([
            "netctl",
            "--insecure",
            "--netmaster",
            "http://h:2",
            "tenant",
            "ls",
        ])
        .ok();
        assert_eq!(
            cli.map(|c| (c.netmaster, c.insecure)),
            Some(("http://h:2".to_string(), true))
        );
    }

    #[test]
    fn version_help_and_usage_errors() {
        let err = parse(["netctl", "-v"]).err();
        assert_eq!(
            err.as_ref().map(|e| e.kind()),
            Some(clap::error::ErrorKind::DisplayVersion)
        );
        assert!(err
            .map(|e| e.to_string())
            .unwrap_or_default()
            .starts_with("netctl version \nVersion: "));
        let err = parse(["netctl", "net", "--help"]).err();
        assert_eq!(err.as_ref().map(|e| e.exit_code()), Some(0));
        let err = parse(["netctl", "nosuch"]).err();
        assert_eq!(err.map(|e| e.exit_code()), Some(2));
        assert!(parse(["netctl"]).is_err());
    }

    #[test]
    fn completion_and_misc_commands() {
        for shell in ["bash", "zsh", "fish"] {
            let cli = parse(["netctl", "completion", shell]).ok();
            assert!(
                matches!(cli.map(|c| c.command), Some(Command::Completion { shell: s }) if s == shell)
            );
        }
        assert!(parse(["netctl", "completion", "tcsh"]).is_err());
        assert!(matches!(
            parse(["netctl", "version"]).ok().map(|c| c.command),
            Some(Command::Version)
        ));
        assert!(matches!(
            parse(["netctl", "login", "-u", "admin"])
                .ok()
                .map(|c| c.command),
            Some(Command::Login { .. })
        ));
    }

    #[test]
    fn every_group_and_alias_exists() {
        let root = command();
        let groups = [
            "tenant",
            "network",
            "net",
            "group",
            "policy",
            "app-profile",
            "service",
            "netprofile",
            "global",
            "bgp",
            "endpoint",
            "ep",
            "external-contracts",
            "aci-gw",
            "version",
            "login",
            "completion",
        ];
        for name in groups {
            assert!(root.find_subcommand(name).is_some(), "missing {name}");
        }
        let policy = root.find_subcommand("policy").map(|p| {
            p.get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect::<Vec<_>>()
        });
        // Contiv's seven, then what this netctl adds (policy state).
        let expected = [
            "create", "rm", "ls", "inspect", "rule-ls", "rule-rm", "rule-add", "explain", "status",
        ];
        assert_eq!(
            policy,
            Some(expected.iter().map(|s| s.to_string()).collect())
        );
    }
}
