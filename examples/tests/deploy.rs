//! The deployment files say what the README says: the example configurations parse with
//! the daemons' own parsers (also the copies inside the Kubernetes ConfigMaps), the
//! manifests add only CAP_SYS_TIME and never run privileged, with a 20Mi memory limit.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use tempora_examples::config::ConfigFile;
use tempora_examples::ntp_client::ClientConfig;
use tempora_examples::ntp_server::ServerConfig;
use tempora_examples::ptp_slave::config::PtpConfigFile;
use tempora_examples::ptp_slave::daemon::SlaveConfig;

fn ptp_config(text: &str) -> SlaveConfig {
    let mut config = SlaveConfig::new("");
    PtpConfigFile::from_toml(text)
        .and_then(|f| f.apply(&mut config))
        .and_then(|()| config.validate())
        .unwrap_or_else(|e| panic!("ptp-slave config: {e}"));
    config
}

fn deploy(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The block scalar after `key: |` in a ConfigMap, unindented.
fn embedded(yaml: &str, key: &str) -> String {
    let start = yaml.find(&format!("{key}: |")).unwrap();
    let mut out = String::new();
    for line in yaml[start..].lines().skip(1) {
        if !line.starts_with("    ") && !line.trim().is_empty() {
            break;
        }
        out.push_str(line.get(4..).unwrap_or(""));
        out.push('\n');
    }
    out
}

#[test]
fn example_configurations_parse() {
    ServerConfig::from_toml(&deploy("config/ntp-server.toml")).unwrap();
    ClientConfig::from_toml(&deploy("config/ntp-client.toml")).unwrap();
    let ptp = ptp_config(&deploy("config/ptp-slave.toml"));
    assert!(ptp.sync_system && ptp.metrics_listen.is_some());
}

#[test]
fn ptp_manifest_adds_only_the_capabilities_it_needs() {
    let yaml = deploy("kubernetes/ptp-slave.yaml");
    assert!(!yaml.contains("privileged: true"));
    assert!(yaml.contains("drop: [\"ALL\"]"));
    assert!(yaml.contains("add: [\"SYS_TIME\", \"NET_ADMIN\", \"NET_RAW\", \"NET_BIND_SERVICE\"]"));
    assert!(yaml.contains("memory: 20Mi"));
    let config = ptp_config(&embedded(&yaml, "ptp-slave.toml"));
    assert_eq!(config.port.domain, 24);
    let unit = deploy("systemd/tempora-ptp-slave.service");
    assert!(unit.contains("DynamicUser=yes"));
    assert!(unit.contains(
        "CapabilityBoundingSet=CAP_SYS_TIME CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE"
    ));
}

#[test]
fn manifests_add_only_sys_time_and_limit_memory() {
    for (file, key) in [
        ("kubernetes/ntp-server.yaml", "ntp-server.toml"),
        ("kubernetes/ntp-client.yaml", "ntp-client.toml"),
    ] {
        let yaml = deploy(file);
        assert!(!yaml.contains("privileged: true"), "{file}");
        assert!(yaml.contains("add: [\"SYS_TIME\"]"), "{file}");
        assert_eq!(
            yaml.matches("add: [").count(),
            1,
            "{file}: one capability added"
        );
        assert!(yaml.contains("memory: 20Mi"), "{file}");
        let config = embedded(&yaml, key);
        if key == "ntp-server.toml" {
            ServerConfig::from_toml(&config).unwrap_or_else(|e| panic!("{file}: {e}"));
        } else {
            ClientConfig::from_toml(&config).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
    for unit in [
        "systemd/tempora-ntp-server.service",
        "systemd/tempora-ntp-client.service",
    ] {
        let text = deploy(unit);
        assert!(text.contains("DynamicUser=yes"), "{unit}: no root");
        assert!(
            text.contains("CapabilityBoundingSet=CAP_SYS_TIME"),
            "{unit}"
        );
    }
}
