//! Files the officer hands to `kurir`: person and document files (TOML or
//! JSON, by extension) and attachments.
//!
//! Errors name the file, the field and the line, so the officer can fix the
//! file: the `toml` and `serde_json` errors carry line and column.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kurir_proto::Date;
use kurir_proto::message::{Attachment, DocumentType, IdentityDocument, Person};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::exit::usage;

/// A document file: the fields of [`IdentityDocument`], with `copy` the path
/// of a scan (relative to the document file) instead of the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentFile {
    /// Kind of document.
    pub document_type: DocumentType,
    /// Document number.
    pub number: String,
    /// Issuing state or authority.
    pub issuer: String,
    /// Date of issue.
    #[serde(default)]
    pub issued_on: Option<Date>,
    /// Date of expiry.
    #[serde(default)]
    pub valid_until: Option<Date>,
    /// A scan or copy to attach.
    #[serde(default)]
    pub copy: Option<PathBuf>,
}

/// Reads a TOML (`.toml`) or JSON (`.json`) file into `T`; errors name the
/// file, the field and the line.
pub fn read_structured<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    parse_structured(&text, path, what)
}

/// Parses `text` read from `path` (see [`read_structured`]).
pub fn parse_structured<T: DeserializeOwned>(text: &str, path: &Path, what: &str) -> Result<T> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => toml::from_str(text).map_err(|e| {
            // toml's message already has "at line L, column C" and the
            // offending line; keep it, indented.
            usage(with_hint(format!(
                "{what} file {}: {}",
                path.display(),
                e.to_string().trim_end()
            )))
        }),
        // serde_json's message ends with "at line L column C".
        Some("json") => serde_json::from_str(text)
            .map_err(|e| usage(with_hint(format!("{what} file {}: {e}", path.display())))),
        _ => Err(usage(format!(
            "{what} file {}: name it .toml or .json so kurir knows how to read it \
             (`kurir readmission template` prints an example)",
            path.display()
        ))),
    }
}

/// Adds what to do to a parse error of an officer's file.
fn with_hint(message: String) -> String {
    if message.contains("missing field") {
        format!(
            "{message}\n(add the field; `kurir readmission template` prints a file with every field)"
        )
    } else {
        message
    }
}

/// Reads a person file.
pub fn read_person(path: &Path) -> Result<Person> {
    let person: Person = read_structured(path, "person")?;
    if person.surname.trim().is_empty() {
        return Err(usage(format!(
            "person file {}: `surname` is empty",
            path.display()
        )));
    }
    if person.nationalities.is_empty() {
        return Err(usage(format!(
            "person file {}: `nationalities` is empty (use [\"unknown\"] if it is not known)",
            path.display()
        )));
    }
    Ok(person)
}

/// Reads a document file, with its scan if it names one.
pub fn read_document(path: &Path) -> Result<IdentityDocument> {
    let d: DocumentFile = read_structured(path, "document")?;
    let copy = match d.copy {
        Some(p) => {
            let p = if p.is_absolute() {
                p
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            };
            Some(read_attachment(&p)?)
        }
        None => None,
    };
    Ok(IdentityDocument {
        document_type: d.document_type,
        number: d.number,
        issuer: d.issuer,
        issued_on: d.issued_on,
        valid_until: d.valid_until,
        copy,
    })
}

/// The media type kurir gives a file, by its extension.
pub fn media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Reads a file to attach: its name (no directories), media type and bytes.
pub fn read_attachment(path: &Path) -> Result<Attachment> {
    let data = std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read the attachment {}: {e}",
            path.display()
        ))
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| usage(format!("{} is not a file name", path.display())))?;
    Ok(Attachment {
        name,
        media_type: media_type(path).to_owned(),
        data,
    })
}

/// Checks attachment sizes before anything is sent: their sum must leave
/// room in a parcel of `max_parcel` bytes.
pub fn check_attachment_sizes(paths: &[PathBuf], max_parcel: usize) -> Result<()> {
    // Room for the envelope, salt and the rest of the body.
    const OVERHEAD: u64 = 16 * 1024;
    let mut total: u64 = 0;
    for p in paths {
        let len = std::fs::metadata(p)
            .map_err(|e| usage(format!("cannot read the attachment {}: {e}", p.display())))?
            .len();
        total = total.saturating_add(len);
    }
    let limit = (max_parcel as u64).saturating_sub(OVERHEAD);
    if total > limit {
        return Err(usage(format!(
            "the attachments are {} in total, over the limit of {} for one message \
             (the relay accepts parcels up to {}): send fewer or smaller files, \
             e.g. a compressed PDF, or split them over several notices",
            human_size(total),
            human_size(limit),
            human_size(max_parcel as u64)
        )));
    }
    Ok(())
}

/// `1.5 MiB`, `340 KiB`, `12 bytes`.
pub fn human_size(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{:.1} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} bytes")
    }
}

/// The longest file name [`safe_file_name`] returns, in bytes (file systems
/// allow 255; [`save_new`] may add ` (999)`).
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// A file name from a received attachment made safe to save: no directory
/// parts; control characters (C0, DEL, C1), bidirectional-text controls
/// (which can show `exe.pdf` for `fdp.exe`) and `:` replaced by `_`; no
/// leading dots; never empty, `.` or `..`; at most
/// [`MAX_FILE_NAME_BYTES`] bytes, cut on a character boundary and keeping
/// the extension.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if crate::output::is_unsafe_char(c) || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').to_owned();
    if trimmed.is_empty() {
        return "attachment".to_owned();
    }
    if trimmed.len() <= MAX_FILE_NAME_BYTES {
        return trimmed;
    }
    // Keep a short extension; cut the stem on a character boundary.
    let ext = match trimmed.rfind('.') {
        Some(i) if i > 0 && trimmed.len() - i <= 16 => &trimmed[i..],
        _ => "",
    };
    let stem = &trimmed[..trimmed.len() - ext.len()];
    let mut end = MAX_FILE_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &stem[..end])
}

/// Saves `data` as `name` in `dir` without overwriting anything: a name
/// already taken gets ` (1)`, ` (2)`, … before its extension.
pub fn save_new(dir: &Path, name: &str, data: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    let name = safe_file_name(name);
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(&name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                f.write_all(data)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", candidate.display()))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(usage(format!("cannot save into {}: {e}", dir.display())));
            }
        }
    }
    Err(usage(format!(
        "too many files named like {name} in {}",
        dir.display()
    )))
}

/// An annotated person file that parses.
pub const PERSON_TEMPLATE: &str = r#"# kurir person file: the person a readmission request is about.
# Fields follow the common application form annexed to the readmission
# agreements. Dates are YYYY-MM-DD. Save as person.toml and pass it with
#   kurir readmission request --person person.toml ...
# Fields marked (required) must be present; remove optional lines you do not need.

# (required) Surname(s) as in the travel document.
surname = "EXAMPLE"
# (required) Given name(s).
given_names = "Ana Maria"
# Surname at birth, if different.
birth_surname = "OLDNAME"
# Other names the person used (aliases).
aliases = ["Anna Example"]
# (required) Date of birth.
birth_date = "1990-04-17"
# (required) Place and country of birth.
birth_place = "Podgorica, ME"
# (required) female, male or unspecified.
sex = "female"
# (required) Nationalities, ISO 3166-1 alpha-2 or as known; ["unknown"] if not known.
nationalities = ["ME"]
# Languages the person speaks (for interpretation at the handover).
languages = ["sr", "en"]
# Last known address in the requested state.
last_address = "Bulevar Svetog Petra Cetinjskog 1, Podgorica"
"#;

/// An annotated document file that parses.
pub const DOCUMENT_TEMPLATE: &str = r#"# kurir document file: one identity or travel document of the person.
# Pass each with --document FILE. Dates are YYYY-MM-DD.

# (required) passport, identity_card, laissez_passer, residence_permit or other.
document_type = "passport"
# (required) Document number.
number = "P0000000"
# (required) Issuing state or authority.
issuer = "ME"
# Date of issue.
issued_on = "2020-01-15"
# Date of expiry.
valid_until = "2030-01-14"
# A scan or copy to attach (pdf, jpg, png), relative to this file.
# copy = "passport-scan.pdf"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Exit, exit_of};

    #[test]
    fn templates_parse() {
        let p: Person =
            parse_structured(PERSON_TEMPLATE, Path::new("person.toml"), "person").unwrap();
        assert_eq!(p.surname, "EXAMPLE");
        assert_eq!(p.birth_date.to_string(), "1990-04-17");
        let d: DocumentFile =
            parse_structured(DOCUMENT_TEMPLATE, Path::new("doc.toml"), "document").unwrap();
        assert_eq!(d.document_type, DocumentType::Passport);
        assert_eq!(d.copy, None);
    }

    #[test]
    fn a_missing_field_names_the_field_file_and_line() {
        let text = PERSON_TEMPLATE.replace("surname = \"EXAMPLE\"\n", "");
        let err = parse_structured::<Person>(&text, Path::new("ana.toml"), "person").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ana.toml"), "{msg}");
        assert!(msg.contains("missing field `surname`"), "{msg}");
        assert!(msg.contains("line"), "{msg}");
        assert_eq!(exit_of(&err), Exit::Usage);

        let json = r#"{
  "given_names": "Ana",
  "birth_date": "1990-04-17",
  "birth_place": "Podgorica",
  "sex": "female",
  "nationalities": ["ME"]
}"#;
        let err = parse_structured::<Person>(json, Path::new("ana.json"), "person").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ana.json"), "{msg}");
        assert!(msg.contains("missing field `surname`"), "{msg}");
        assert!(msg.contains("line 7"), "{msg}");
    }

    #[test]
    fn wrong_values_and_unknown_fields_name_the_line() {
        let text = PERSON_TEMPLATE.replace("1990-04-17", "17.04.1990");
        let msg = parse_structured::<Person>(&text, Path::new("p.toml"), "person")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 16"), "{msg}");
        assert!(msg.contains("YYYY-MM-DD"), "{msg}");
        let text = format!("{PERSON_TEMPLATE}eye_colour = \"brown\"\n");
        let msg = parse_structured::<Person>(&text, Path::new("p.toml"), "person")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("eye_colour"), "{msg}");
        let msg = parse_structured::<Person>("", Path::new("p.yaml"), "person")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(".toml or .json"), "{msg}");
    }

    #[test]
    fn media_types_by_extension() {
        assert_eq!(media_type(Path::new("a.PDF")), "application/pdf");
        assert_eq!(media_type(Path::new("a.jpeg")), "image/jpeg");
        assert_eq!(media_type(Path::new("a.jpg")), "image/jpeg");
        assert_eq!(media_type(Path::new("a.png")), "image/png");
        assert_eq!(media_type(Path::new("a.txt")), "text/plain");
        assert_eq!(media_type(Path::new("a.docx")), "application/octet-stream");
    }

    #[test]
    fn received_names_cannot_escape_the_directory() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x\\scan.pdf"), "scan.pdf");
        assert_eq!(safe_file_name(".."), "attachment");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("a\nb.txt"), "a_b.txt");
        // Escape sequences and bidi controls do not survive.
        assert_eq!(
            safe_file_name("\x1b]0;owned\x07invoice\u{202e}fdp.exe"),
            "_]0;owned_invoice_fdp.exe"
        );
        for c in [
            '\u{202a}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{9b}', '\u{7f}',
        ] {
            assert_eq!(safe_file_name(&format!("a{c}b")), "a_b", "{c:?}");
        }
        // Capped in bytes on a character boundary, the extension kept.
        let long = format!("{}.pdf", "ш".repeat(300));
        let safe = safe_file_name(&long);
        assert!(safe.len() <= MAX_FILE_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("шш.pdf"), "{safe}");
        let long = "é".repeat(300);
        let safe = safe_file_name(&long);
        assert!(safe.len() <= MAX_FILE_NAME_BYTES && safe.chars().all(|c| c == 'é'));
        let dir = tempfile::tempdir().unwrap();
        let a = save_new(dir.path(), "../scan.pdf", b"1").unwrap();
        let b = save_new(dir.path(), "scan.pdf", b"2").unwrap();
        assert_eq!(a, dir.path().join("scan.pdf"));
        assert_eq!(b, dir.path().join("scan (1).pdf"));
        assert_eq!(std::fs::read(&a).unwrap(), b"1");
    }

    #[test]
    fn oversized_attachments_are_refused_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pdf");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(9 << 20)
            .unwrap();
        let err = check_attachment_sizes(std::slice::from_ref(&big), 8 << 20).unwrap_err();
        assert_eq!(exit_of(&err), Exit::Usage);
        assert!(err.to_string().contains("9.0 MiB"), "{err}");
        check_attachment_sizes(&[big], 16 << 20).unwrap();
    }
}
