//! East-west service load balancing, as data and a driver trait: each serviceLB is a VIP with
//! port maps and the provider addresses its selectors chose; the driver makes the client's host
//! send each new connection to the VIP to one provider (conntrack keeps it there), beside the
//! [`crate::Datapath`] and [`crate::PolicyDriver`] of the same host.

use std::net::Ipv4Addr;

use crate::DatapathError;

/// Transport of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// One `svcPort:provPort:TCP|UDP` of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePort {
    pub transport: Transport,
    /// Port clients connect to on the VIP.
    pub port: u16,
    /// Port the providers listen on.
    pub target: u16,
}

impl ServicePort {
    /// Contiv's port map `80:8080:TCP` (protocol case-insensitive).
    pub fn parse(s: &str) -> Option<ServicePort> {
        let mut it = s.split(':');
        let port = it.next()?.trim().parse::<u16>().ok().filter(|p| *p != 0)?;
        let target = it.next()?.trim().parse::<u16>().ok().filter(|p| *p != 0)?;
        let transport = match it.next()?.trim().to_ascii_lowercase().as_str() {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            _ => return None,
        };
        if it.next().is_some() {
            return None;
        }
        Some(ServicePort {
            transport,
            port,
            target,
        })
    }
}

/// One service as a host must balance it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceSpec {
    /// `tenant:service`.
    pub name: String,
    pub vip: Ipv4Addr,
    pub ports: Vec<ServicePort>,
    /// Provider addresses, sorted, without duplicates (empty: connections to the VIP are refused).
    pub providers: Vec<Ipv4Addr>,
}

/// Every service of one tenant (the unit a driver applies at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantServices {
    pub tenant: String,
    /// Sorted by name.
    pub services: Vec<ServiceSpec>,
}

/// Programs service load balancing on this host, per tenant, as one transaction per call.
pub trait ServiceDriver: Send + Sync {
    /// Makes the tenant's balancing exactly `desired` (replacing what was there); returns whether
    /// anything changed. Established connections keep their provider.
    fn apply(&self, desired: &TenantServices) -> Result<bool, DatapathError>;
    /// Removes the tenant's balancing (no service left, or no workload of it on this host).
    fn forget(&self, tenant: &str) -> Result<(), DatapathError>;
}

/// A datapath without service balancing.
#[derive(Debug, Default)]
pub struct NoServices;

impl ServiceDriver for NoServices {
    fn apply(&self, _: &TenantServices) -> Result<bool, DatapathError> {
        Ok(false)
    }
    fn forget(&self, _: &str) -> Result<(), DatapathError> {
        Ok(())
    }
}

/// Recording fake for unit tests: keeps the last desired state per tenant.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeServices {
    applied: std::sync::Mutex<std::collections::BTreeMap<String, TenantServices>>,
}

#[cfg(any(test, feature = "fake"))]
impl FakeServices {
    /// What was last applied for `tenant` (`None`: nothing, or forgotten).
    pub fn applied(&self, tenant: &str) -> Option<TenantServices> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }
}

#[cfg(any(test, feature = "fake"))]
impl ServiceDriver for FakeServices {
    fn apply(&self, desired: &TenantServices) -> Result<bool, DatapathError> {
        let mut g = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let changed = g.get(&desired.tenant) != Some(desired);
        g.insert(desired.tenant.clone(), desired.clone());
        Ok(changed)
    }
    fn forget(&self, tenant: &str) -> Result<(), DatapathError> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_maps_as_contiv_writes_them() {
        assert_eq!(
            ServicePort::parse("80:8080:TCP"),
            Some(ServicePort {
                transport: Transport::Tcp,
                port: 80,
                target: 8080
            })
        );
        assert_eq!(
            ServicePort::parse("53:5353:udp").map(|p| p.transport),
            Some(Transport::Udp)
        );
        for bad in [
            "80:8080",
            "0:80:TCP",
            "80:80:SCTP",
            "80:80:TCP:x",
            "a:80:TCP",
            "",
        ] {
            assert_eq!(ServicePort::parse(bad), None, "{bad}");
        }
    }
}
