//! Prometheus text and JSON status of the server.

use std::fmt::Write as _;
use std::sync::PoisonError;

use tempora_ntp::server::DropReason;

use super::state::Shared;
use crate::http::Body;

/// Answers `/metrics` and `/status`.
pub(crate) fn handle(path: &str, shared: &Shared) -> Option<Body> {
    match path {
        "/metrics" => Some(Body {
            content_type: "text/plain; version=0.0.4",
            text: prometheus(shared),
        }),
        "/status" | "/" => Some(Body {
            content_type: "application/json",
            text: status_json(shared).to_string() + "\n",
        }),
        _ => None,
    }
}

fn prometheus(shared: &Shared) -> String {
    let c = *shared
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let state = *shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    let clients = shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    let mut o = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, rows: &[(String, f64)]| {
        let _ = writeln!(o, "# HELP tempora_ntp_server_{name} {help}");
        let _ = writeln!(o, "# TYPE tempora_ntp_server_{name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(o, "tempora_ntp_server_{name}{labels} {v}");
        }
    };
    let plain = |v: u64| vec![(String::new(), v as f64)];
    metric(
        "received_total",
        "counter",
        "Datagrams received.",
        &plain(c.received),
    );
    metric(
        "requests_total",
        "counter",
        "Requests by NTP version (valid client requests).",
        &[3, 4]
            .iter()
            .map(|v| {
                (
                    format!("{{version=\"{v}\"}}"),
                    c.requests_by_version[*v] as f64,
                )
            })
            .collect::<Vec<_>>(),
    );
    metric(
        "requests_by_mode_total",
        "counter",
        "Parsed packets by mode (6 and 7 are never answered).",
        &(0..8)
            .map(|m| (format!("{{mode=\"{m}\"}}"), c.requests_by_mode[m] as f64))
            .collect::<Vec<_>>(),
    );
    metric(
        "responses_total",
        "counter",
        "Time responses sent (kisses not included).",
        &plain(c.responses),
    );
    metric(
        "interleaved_responses_total",
        "counter",
        "Responses in interleaved mode.",
        &plain(c.interleaved),
    );
    metric(
        "drops_total",
        "counter",
        "Requests not answered, by reason.",
        &DropReason::ALL
            .iter()
            .map(|r| {
                (
                    format!("{{reason=\"{}\"}}", r.label()),
                    c.dropped(*r) as f64,
                )
            })
            .collect::<Vec<_>>(),
    );
    metric(
        "kod_sent_total",
        "counter",
        "Kiss-o'-death responses sent, by code.",
        &[
            ("{code=\"RATE\"}".to_string(), c.kod_rate as f64),
            ("{code=\"DENY\"}".to_string(), c.kod_deny as f64),
        ],
    );
    metric(
        "rate_limited_total",
        "counter",
        "Requests over the rate limit (dropped or kissed).",
        &plain(c.dropped(DropReason::RateLimited)),
    );
    metric(
        "mac_responses_total",
        "counter",
        "Answers MAC'd with the symmetric key their request was MAC'd with.",
        &plain(c.mac_responses),
    );
    metric(
        "crypto_naks_total",
        "counter",
        "Crypto-NAKs sent: MAC'd requests of an unknown key or with a MAC that did not verify.",
        &plain(c.crypto_naks),
    );
    metric(
        "send_errors_total",
        "counter",
        "Responses the kernel refused.",
        &plain(c.send_errors),
    );
    metric(
        "clients",
        "gauge",
        "Clients in the rate-limit table.",
        &plain(clients as u64),
    );
    metric(
        "stratum",
        "gauge",
        "Stratum served (16: unsynchronised).",
        &plain(u64::from(state.stratum.0)),
    );
    metric(
        "leap_indicator",
        "gauge",
        "Leap indicator served (3: unsynchronised).",
        &plain(state.leap as u64),
    );
    metric(
        "root_dispersion_seconds",
        "gauge",
        "Root dispersion served.",
        &[(String::new(), state.root_dispersion.to_seconds_f64())],
    );
    metric(
        "root_delay_seconds",
        "gauge",
        "Root delay served.",
        &[(String::new(), state.root_delay.to_seconds_f64())],
    );
    if let Some(leap) = shared.leap.as_ref().filter(|l| l.smear.is_some()) {
        use std::sync::atomic::Ordering::Relaxed;
        metric(
            "leap_smear_active",
            "gauge",
            "1 while a leap second is being smeared.",
            &[(
                String::new(),
                f64::from(u8::from(leap.smearing.load(Relaxed))),
            )],
        );
        metric(
            "leap_smear_offset_seconds",
            "gauge",
            "The smear's offset from the clock in the time served.",
            &[(
                String::new(),
                leap.smear_offset_ns.load(Relaxed) as f64 * 1e-9,
            )],
        );
    }
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[(String::new(), shared.started.elapsed().as_secs_f64())],
    );
    if let Some(nts) = &shared.nts {
        let ke = *nts.ke.lock().unwrap_or_else(PoisonError::into_inner);
        metric(
            "nts_ke_total",
            "counter",
            "NTS key exchanges, by how they ended.",
            &ke.by_result()
                .iter()
                .map(|(r, n)| (format!("{{result=\"{r}\"}}"), *n as f64))
                .collect::<Vec<_>>(),
        );
        metric(
            "nts_cookies_issued_total",
            "counter",
            "Cookies given in key exchanges.",
            &plain(ke.cookies),
        );
        metric(
            "nts_responses_total",
            "counter",
            "NTS requests that authenticated, answered with new cookies.",
            &plain(c.nts_responses),
        );
        metric(
            "nts_naks_total",
            "counter",
            "NTS NAKs sent (a cookie of a key no longer kept, or forged; an authenticator that failed).",
            &plain(c.nts_naks),
        );
        metric(
            "nts_invalid_total",
            "counter",
            "Requests with NTS fields malformed or incomplete, dropped.",
            &plain(c.dropped(DropReason::NtsInvalid)),
        );
        let keys = nts.keys.read().unwrap_or_else(PoisonError::into_inner);
        metric(
            "nts_master_keys",
            "gauge",
            "NTS master keys kept (the current one and old ones).",
            &plain(keys.ids().count() as u64),
        );
    }
    o
}

/// The status document.
pub(crate) fn status_json(shared: &Shared) -> serde_json::Value {
    let c = *shared
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let state = *shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    let reference = state.reference_id.interpret(state.stratum).to_string();
    let mut drops = serde_json::Map::new();
    for r in DropReason::ALL {
        drops.insert(r.label().into(), c.dropped(r).into());
    }
    serde_json::json!({
        "source": shared.source_description,
        "uptime_seconds": shared.started.elapsed().as_secs_f64(),
        "served": {
            "leap": state.leap as u8,
            "stratum": state.stratum.0,
            "reference_id": reference,
            "root_delay": state.root_delay.to_seconds_f64(),
            "root_dispersion": state.root_dispersion.to_seconds_f64(),
        },
        "received": c.received,
        "responses": c.responses,
        "interleaved_responses": c.interleaved,
        "requests_by_version": { "3": c.requests_by_version[3], "4": c.requests_by_version[4] },
        "drops": drops,
        "kod_sent": { "RATE": c.kod_rate, "DENY": c.kod_deny },
        "mac_responses": c.mac_responses,
        "crypto_naks": c.crypto_naks,
        "upstream": shared.upstream.as_ref().map(|u| u.status_json()),
        "leap": shared.leap.as_ref().map(|l| {
            use std::sync::atomic::Ordering::Relaxed;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            serde_json::json!({
                "file_expires_unix": l.list.expires_unix(),
                "file_expired": l.list.is_expired(now),
                "tai_minus_utc": l.list.tai_minus_utc(now),
                "smear": l.smear.map(|s| serde_json::json!({
                    "kind": format!("{:?}", s.shape).to_lowercase(),
                    "duration": s.duration,
                    "active": l.smearing.load(Relaxed),
                    "offset_seconds": l.smear_offset_ns.load(Relaxed) as f64 * 1e-9,
                })),
            })
        }),
        "nts": shared.nts.as_ref().map(|n| {
            let ke = *n.ke.lock().unwrap_or_else(PoisonError::into_inner);
            let keys = n.keys.read().unwrap_or_else(PoisonError::into_inner);
            let by_result: serde_json::Map<String, serde_json::Value> = ke
                .by_result()
                .iter()
                .map(|(r, c)| ((*r).to_string(), (*c).into()))
                .collect();
            serde_json::json!({
                "key_exchanges": by_result,
                "cookies_issued": ke.cookies,
                "responses": c.nts_responses,
                "naks": c.nts_naks,
                "invalid": c.dropped(DropReason::NtsInvalid),
                "master_key": keys.current_id(),
                "master_keys_kept": keys.ids().count(),
            })
        }),
    })
}
