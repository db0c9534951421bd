//! docs/events.md names every event the gateway writes: each event name in the source (the
//! dotted string given to `Event::new` or to `security_event`) has a row in its table.

use std::path::Path;

fn event_names(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["Event::new(", "security_event("] {
        for (at, _) in source.match_indices(marker) {
            // The event name is the first string literal after the call that contains a dot
            // and only lowercase letters, dots and underscores.
            let rest = &source[at + marker.len()..];
            let end = rest.find(';').unwrap_or(rest.len()).min(400);
            for lit in rest[..end].split('"').skip(1).step_by(2) {
                let is_name = lit.contains('.')
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
                if is_name {
                    out.push(lit.to_owned());
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn every_event_written_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../../docs/events.md")).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for name in event_names(&text) {
            seen += 1;
            if !doc.contains(&format!("`{name}`")) {
                missing.push(format!("{name} ({})", path.display()));
            }
        }
    }
    assert!(seen > 20, "the scan found only {seen} event names");
    assert!(
        missing.is_empty(),
        "events missing from docs/events.md: {missing:?}"
    );
}
