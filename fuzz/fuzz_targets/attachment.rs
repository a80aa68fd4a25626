//! An attached file as a form sends it: any name and any bytes through `files::check` for a
//! set of accepted types, and through `detect`, `sanitise_name` and `content_disposition`.
//! Never a panic; an accepted file is of an accepted type detected from its content, named
//! with that type's extension, and hashed over its content; a stored name is one path
//! component without control or bidi characters, bounded and stable; a download header is
//! one ASCII line.
//!
//! Input: byte 0 picks the accepted types (one bit per `FileType::ALL`, none = all) and
//! whether the content was too large, byte 1 the length of the name, then the name (UTF-8,
//! lossy), then the content.
#![no_main]

use coherence::files::{
    check, content_disposition, detect, sanitise_name, Content, Limits, Upload,
};
use coherence::survey::FileType;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Unicode's Bidi_Control characters: none may reach a stored name.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn check_name(raw: &str) -> String {
    let name = sanitise_name(raw);
    assert!(!name.is_empty(), "empty name from {raw:?}");
    assert!(
        name.chars().count() <= 151,
        "{} characters: {name:?}",
        name.chars().count()
    );
    assert!(
        !name.contains(['/', '\\']),
        "a path separator in {name:?} from {raw:?}"
    );
    assert!(
        !name.chars().any(|c| c.is_control() || is_bidi_control(c)),
        "a control or bidi character in {name:?} from {raw:?}"
    );
    assert!(
        !name.starts_with('.'),
        "a hidden name {name:?} from {raw:?}"
    );
    assert_eq!(sanitise_name(&name), name, "not stable, from {raw:?}");
    let header = content_disposition(raw);
    assert!(
        header.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
        "not one ASCII header line: {header:?} from {raw:?}"
    );
    assert!(header.starts_with("attachment; filename=\""));
    name
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&name_len, rest)) = rest.split_first() else {
        return;
    };
    let (name, content) = rest.split_at(usize::from(name_len).min(rest.len()));
    let raw_name = String::from_utf8_lossy(name).into_owned();
    let name = check_name(&raw_name);

    let detected = detect(content);
    let mut accept: Vec<FileType> = FileType::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| flags & (1 << i) != 0)
        .map(|(_, t)| t)
        .collect();
    if accept.is_empty() {
        accept = FileType::ALL.to_vec();
    }
    let too_large = flags == 0xFF;
    let upload = Upload {
        name: raw_name.clone(),
        declared_type: "application/octet-stream".into(),
        content: if too_large {
            Content::TooLarge
        } else {
            Content::Bytes(content.to_vec())
        },
    };
    let limits = Limits {
        max_size_mb: 1,
        accept: &accept,
    };
    match check(upload, limits) {
        Ok(file) => {
            assert!(!too_large && !content.is_empty());
            assert_eq!(Some(file.detected), detected, "detected differently");
            assert!(
                accept.contains(&file.detected),
                "{:?} not accepted",
                file.detected
            );
            assert_eq!(file.name, name);
            let ext = file
                .name
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            assert!(
                file.detected.extensions().contains(&ext.as_str()),
                "{:?} stored as {:?}",
                file.detected,
                file.name
            );
            assert_eq!(file.sha256, hex::encode(Sha256::digest(content)));
            assert_eq!(file.bytes, content);
        }
        Err(e) => {
            assert!(e.message_id.starts_with("file-"), "{e:?}");
            // Refused for its type only when the content or the name says another.
            if e.message_id == "file-wrong-type" {
                let by_name = FileType::of_name(&name);
                assert!(
                    detected.is_none_or(|t| !accept.contains(&t) || by_name != Some(t)),
                    "{detected:?} named {name:?} refused"
                );
            }
        }
    }
});
