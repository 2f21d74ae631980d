//! `netctl global`: the cluster-wide settings object `global` (info, inspect, set).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::{inspect, Ctx};
use crate::cli::InfoFlags;
use crate::error::{Error, Result};
use crate::output::{label_lines, print_json};

const PLURAL: &str = "globals";
const NAME: &str = "global";

/// Global information
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum GlobalCmd {
    /// Show global information
    Info(InfoFlags),
    /// Inspect Global Operational Information
    Inspect,
    /// Set global parameters
    Set(SetArgs),
}

/// `netctl global set [options]`: each given flag replaces one setting.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct SetArgs {
    /// Fabric mode (aci, aci-opflex or default)
    #[arg(
        short = 'f',
        long = "fabric-mode",
        default_value = "",
        hide_default_value = true
    )]
    pub fabric_mode: String,
    /// Allowed Vlan id range
    #[arg(
        short = 'v',
        long = "vlan-range",
        default_value = "",
        hide_default_value = true
    )]
    pub vlan_range: String,
    /// Allowed Vxlan VNID range
    #[arg(
        short = 'x',
        long = "vxlan-range",
        default_value = "",
        hide_default_value = true
    )]
    pub vxlan_range: String,
    /// forwarding mode (bridge,routing)
    #[arg(
        short = 'b',
        long = "fwd-mode",
        default_value = "",
        hide_default_value = true
    )]
    pub fwd_mode: String,
    /// arp mode (proxy,flood)
    #[arg(
        short = 'a',
        long = "arp-mode",
        default_value = "",
        hide_default_value = true
    )]
    pub arp_mode: String,
    /// Select a /16 private subnet for host access
    #[arg(short = 's', long = "private-subnet", default_value = "172.19.0.0/16")]
    pub private_subnet: String,
}

/// The config fields of `global` (what Contiv's client sends back).
const CONFIG_FIELDS: [&str; 8] = [
    "key",
    "name",
    "networkInfraType",
    "vlans",
    "vxlans",
    "fwdMode",
    "arpMode",
    "pvtSubnet",
];

pub fn run(cmd: &GlobalCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    match cmd {
        GlobalCmd::Info(flags) => {
            let list = ctx.client()?.list(PLURAL)?;
            if flags.json {
                print_json(out, &Value::from(list))
            } else {
                out.write_all(info_text(&list).as_bytes())?;
                Ok(())
            }
        }
        GlobalCmd::Inspect => inspect(ctx, out, PLURAL, NAME),
        GlobalCmd::Set(args) => {
            let client = ctx.client()?;
            let current = client.get(PLURAL, NAME)?;
            client.post(PLURAL, NAME, &updated(&current, args)?)
        }
    }
}

/// `global` with the flags given applied (empty flags keep the current value).
pub fn updated(current: &Value, args: &SetArgs) -> Result<Value> {
    let Value::Object(fields) = current else {
        return Err(Error::Decode {
            path: format!("/api/v1/{PLURAL}/{NAME}/"),
            reason: "expected a JSON object".to_string(),
        });
    };
    let mut body: Map<String, Value> = CONFIG_FIELDS
        .iter()
        .filter_map(|f| fields.get(*f).map(|v| (f.to_string(), v.clone())))
        .filter(|(_, v)| !matches!(v, Value::Null) && v.as_str() != Some(""))
        .collect();
    body.entry("name").or_insert_with(|| Value::from(NAME));
    let changes = [
        ("networkInfraType", &args.fabric_mode),
        ("vlans", &args.vlan_range),
        ("vxlans", &args.vxlan_range),
        ("fwdMode", &args.fwd_mode),
        ("arpMode", &args.arp_mode),
        ("pvtSubnet", &args.private_subnet),
    ];
    for (field, value) in changes {
        if !value.is_empty() {
            body.insert(field.to_string(), Value::from(value.as_str()));
        }
    }
    Ok(Value::Object(body))
}

/// `global info` as Contiv printed it, one "Label: value" line per setting.
pub fn info_text(list: &[Value]) -> String {
    label_lines(
        list,
        &[
            ("Fabric mode", "networkInfraType"),
            ("Forward mode", "fwdMode"),
            ("ARP mode", "arpMode"),
            ("Vlan Range", "vlans"),
            ("Vxlan range", "vxlans"),
            ("Private subnet", "pvtSubnet"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::{parse, run_netctl, FakeServer};
    use serde_json::json;

    fn global(args: &[&str]) -> GlobalCmd {
        match parse(args).command {
            Command::Global(cmd) => cmd,
            other => panic!("not a global command: {other:?}"),
        }
    }

    #[test]
    fn parses() {
        let GlobalCmd::Set(s) = global(&[
            "global", "set", "-f", "aci", "-v", "1-100", "-x", "1-1000", "-b", "routing", "-a",
            "flood",
        ]) else {
            panic!("not set")
        };
        assert_eq!(
            (
                s.fabric_mode.as_str(),
                s.vlan_range.as_str(),
                s.vxlan_range.as_str()
            ),
            ("aci", "1-100", "1-1000")
        );
        assert_eq!(
            (
                s.fwd_mode.as_str(),
                s.arp_mode.as_str(),
                s.private_subnet.as_str()
            ),
            ("routing", "flood", "172.19.0.0/16")
        );
        assert!(matches!(global(&["global", "info", "-j"]), GlobalCmd::Info(f) if f.json));
        assert_eq!(global(&["global", "inspect"]), GlobalCmd::Inspect);
    }

    #[test]
    fn set_updates_fetched_object() {
        let srv = FakeServer::start();
        srv.route("GET", "/api/v1/globals/global/", 200, r#"{"key":"global","name":"global","networkInfraType":"default",
            "vlans":"1-4094","vxlans":"1-10000","fwdMode":"bridge","arpMode":"proxy","pvtSubnet":"172.19.0.0/16","link-sets":{}}"#);
        srv.route("POST", "/api/v1/globals/global/", 200, "{}");
        let (res, out) = run_netctl(
            &srv.url,
            &[
                "global",
                "set",
                "--vlan-range",
                "100-200",
                "--fwd-mode",
                "routing",
            ],
        );
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(out, "");
        assert_eq!(
            srv.writes()[0].json(),
            json!({"key": "global", "name": "global", "networkInfraType": "default", "vlans": "100-200",
                   "vxlans": "1-10000", "fwdMode": "routing", "arpMode": "proxy", "pvtSubnet": "172.19.0.0/16"})
        );
    }

    #[test]
    fn info_lines() {
        let text = info_text(&[
            json!({"networkInfraType": "default", "fwdMode": "bridge", "arpMode": "proxy",
            "vlans": "1-4094", "vxlans": "1-10000", "pvtSubnet": "172.19.0.0/16"}),
        ]);
        assert_eq!(text, "Fabric mode: default\nForward mode: bridge\nARP mode: proxy\nVlan Range: 1-4094\nVxlan range: 1-10000\nPrivate subnet: 172.19.0.0/16\n");
    }
}
