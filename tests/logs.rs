//! Logs for operators: `-o log_format=json` writes one JSON object per line (against moto).

mod harness;
mod support;

use harness::MountCmd;

#[test]
fn json_logs_are_one_object_per_line() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("logs");
    let m = MountCmd::s3(&s3, "logs", &["log_format=json"]).mount();
    std::fs::write(m.p("f.txt"), b"x").unwrap();
    let text = m.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing logged");
    let mut messages = Vec::new();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert!(
        messages.iter().any(|m| m == "mounted"),
        "the mount line: {messages:?}"
    );
}
