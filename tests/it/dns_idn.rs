//! Names in DNS answers (owner names, CNAME targets) are shown by `escape::display_name`: the
//! ASCII (`xn--`) form, with the Unicode form only when it is safe. hickory decodes `xn--`
//! labels to Unicode when printing a name, so a CNAME to a look-alike name (`pаypal` with a
//! Cyrillic `а`) would read as the real one. Through an in-process fake name server, the real
//! query code, the diagnosis and both renderers.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::common;
use canreach::diagnosis::diagnose;
use canreach::dns::files::ResolvConf;
use canreach::dns::servers::query;
use canreach::dns::{DnsFacts, DnsView};
use canreach::facts::Facts;
use canreach::services::Services;

use common::fake_dns::{Script, serve};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record};
use tokio::time::Instant;

/// `xn--…` for a label, whatever its characters (idna would refuse the hostile ones).
fn xn(label: &str) -> String {
    format!("xn--{}", idna::punycode::encode_str(label).unwrap())
}

fn cname(name: &str, to: &str) -> Record {
    Record::from_rdata(
        Name::from_str(name).unwrap(),
        60,
        RData::CNAME(CNAME(Name::from_str(to).unwrap())),
    )
}

#[tokio::test]
async fn cname_targets_are_shown_in_ascii_unless_their_unicode_is_safe() {
    let homograph = format!("{}.test.", xn("p\u{430}ypal")); // Cyrillic а
    let bidi = format!("{}.test.", xn("a\u{202e}b"));
    let csi = format!("{}.test.", xn("ex\u{9b}31mample"));
    let safe = format!("{}.test.", xn("b\u{fc}cher"));
    let (addr, _server) = serve(Script::zone(vec![
        cname("app.test.", &safe),
        cname(&safe, &homograph),
        cname(&homograph, &bidi),
        cname(&bidi, &csi),
        Record::from_rdata(
            Name::from_str(&csi).unwrap(),
            60,
            RData::A(A(Ipv4Addr::new(198, 18, 2, 2))),
        ),
    ]))
    .await;
    let conf = ResolvConf {
        nameservers: vec![],
        search: vec![],
        ndots: 1,
        timeout: Duration::from_millis(1000),
        attempts: 1,
    };
    let view = query(
        addr,
        "app.test.",
        &conf,
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert!(view.lookup.error.is_none(), "{view:?}");
    // The facts keep the ASCII form of every name.
    for r in &view.records {
        assert!(r.name.is_ascii() && r.data.is_ascii(), "{r:?}");
    }
    assert!(view.records.iter().any(|r| r.data == homograph));

    let target = canreach::target::parse("app.test", Some("443"), &Services::parse("")).unwrap();
    let facts = Facts {
        dns: DnsFacts {
            system: Some(DnsView::combine(std::slice::from_ref(&view))),
            direct: Some(DnsView::combine(std::slice::from_ref(&view))),
            servers: vec![view],
            resolv: None,
            hosts: vec![],
        },
        ..Facts::new(target, Duration::from_secs(5))
    };
    let d = diagnose(facts);
    let mut text = Vec::new();
    canreach::render::text::render(&d, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let mut json = Vec::new();
    canreach::render::json::render(&d, &mut json).unwrap();
    let json = String::from_utf8(json).unwrap();

    for out in [&text, &json] {
        // The look-alike never appears in Unicode, the hostile characters never raw.
        assert!(!out.contains("p\u{430}ypal"), "homograph shown:\n{out}");
        assert!(!out.contains('\u{202e}'), "bidi override:\n{out}");
        assert!(!out.contains('\u{9b}'), "C1 CSI:\n{out}");
        assert!(out.contains(homograph.trim_end_matches('.')), "{out}");
        assert!(out.contains(bidi.trim_end_matches('.')), "{out}");
        assert!(out.contains(csi.trim_end_matches('.')), "{out}");
    }
    // A safe IDN is shown in both forms in the text report, ASCII first.
    assert!(
        text.contains(&format!(
            "{} (b\u{fc}cher.test)",
            safe.trim_end_matches('.')
        )),
        "{text}"
    );
    // JSON keeps the names as sent (ASCII), for programs to compare.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let records = v["dns"]["servers"][0]["records"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["data"] == homograph.as_str()),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r["name"] == csi.as_str()),
        "{records:?}"
    );
}
