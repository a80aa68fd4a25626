//! Section forms with file questions (multipart, no JavaScript) and file downloads.
//!
//! A url-encoded section post is read as every other form is (small limit, then the CSRF
//! token). A multipart one may be large, so before a byte of its body is read the link is
//! looked up (an unknown, revoked or expired link gets its 404/410/429 at once) and a turn
//! among the few uploads read at the same time is taken; its limit is then the link's own
//! section's file budget (the sum of its file questions' `max_files * max_size_mb`) plus a
//! small allowance for the other fields. The CSRF token must come before any file (it is the
//! form's first field) and is checked when read, so nobody but the link's own browser makes
//! the server hold a file in memory. Each part is streamed with a running count; a file past
//! its question's size is read on and dropped, to be refused with its message next to the
//! field.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::link::Respondent;
use crate::db::files::{self, FileMeta};
use crate::error::AppError;
use crate::files::{Content, FilePost, Upload, MB};
use crate::survey::{FileType, QuestionKind, Survey};
use crate::web::extract::{self, SurveyAdmin};
use crate::web::{AppState, MAX_FORM_BYTES};

/// The most parts a section form may have (fields, checkboxes and files).
const MAX_PARTS: usize = 2000;

/// A section post: its fields in order, and the files of its file questions.
pub struct SectionPost {
    pub pairs: Vec<(String, String)>,
    pub files: HashMap<String, FilePost>,
}

impl SectionPost {
    /// A text field: a file question's remove box, or an answer like any other.
    fn push_field(&mut self, budget: &Budget, name: String, value: String) {
        if let Some(question) = name.strip_suffix(".remove") {
            if budget.per_file.contains_key(question) {
                let entry = self.files.entry(question.to_string()).or_default();
                entry.remove.push(value);
                return;
            }
        }
        self.pairs.push((name, value));
    }
}

/// Read a section post, url-encoded or multipart, and check its CSRF token.
pub async fn read_section_post(
    link: &Respondent,
    req: &HttpRequest,
    section_id: &str,
    payload: web::Payload,
) -> Result<SectionPost, AppError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        // As `CsrfForm` reads every other form: the small body limit, then the token.
        let mut payload = payload;
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest)?;
            if body.len() + chunk.len() > MAX_FORM_BYTES {
                return Err(AppError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|_| AppError::BadRequest)?;
        extract::verify_form(req, &pairs)?;
        // Remove boxes work without a file chosen, whatever the encoding.
        let state = extract::state_of(req)?;
        let budget = Budget::of(&state, section_id);
        let mut post = SectionPost {
            pairs: Vec::new(),
            files: HashMap::new(),
        };
        for (name, value) in pairs {
            post.push_field(&budget, name, value);
        }
        return Ok(post);
    }
    let survey = link.survey().await?;
    let state = extract::state_of(req)?;
    let budget = Budget::of_survey(&survey, section_id);
    extract::refuse_declared_over(req, budget.total)?;
    let _turn = state
        .uploads
        .acquire()
        .await
        .map_err(|_| AppError::Overloaded)?;
    let post = read_multipart(req, payload, &budget).await?;
    extract::verify_form(req, &post.pairs)?;
    Ok(post)
}

/// What a multipart section post may hold.
struct Budget {
    /// The whole body.
    total: u64,
    /// Per file question id: the largest file it takes.
    per_file: HashMap<String, u64>,
}

impl Budget {
    /// For a url-encoded post, which only names files to remove: the file questions of any
    /// served section of this id (the save checks them against the link's survey).
    fn of(state: &AppState, section_id: &str) -> Budget {
        let mut budget = Budget {
            total: 0,
            per_file: HashMap::new(),
        };
        for survey in state.catalog.iter() {
            let one = Budget::of_survey(survey, section_id);
            budget.total = budget.total.max(one.total);
            for (q, size) in one.per_file {
                let entry = budget.per_file.entry(q).or_default();
                *entry = (*entry).max(size);
            }
        }
        budget
    }

    /// The link's own section.
    fn of_survey(survey: &Survey, section_id: &str) -> Budget {
        let mut total = 0u64;
        let mut per_file: HashMap<String, u64> = HashMap::new();
        let questions = survey.section(section_id).map(|s| s.questions.as_slice());
        for q in questions.unwrap_or_default() {
            if let QuestionKind::File {
                max_files,
                max_size_mb,
                ..
            } = &q.kind
            {
                let size = u64::from(*max_size_mb) * MB;
                total += *max_files as u64 * size;
                per_file.insert(q.id.clone(), size);
            }
        }
        Budget {
            // Room for the other fields and every part's headers.
            total: total + MAX_FORM_BYTES as u64 + 64 * 1024,
            per_file,
        }
    }
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    budget: &Budget,
) -> Result<SectionPost, AppError> {
    let mut parts = Multipart::new(req.headers(), payload.into_inner());
    let mut post = SectionPost {
        pairs: Vec::new(),
        files: HashMap::new(),
    };
    let (mut total, mut text_total, mut count) = (0u64, 0usize, 0usize);
    // The form's token comes first (the section form's first field): checked as soon as it is
    // read, so a post that is not the link's own is refused before any file is buffered.
    let mut verified = false;
    while let Some(part) = parts.next().await {
        count += 1;
        if count > MAX_PARTS {
            return Err(AppError::BadRequest);
        }
        let mut part = part.map_err(|_| AppError::BadRequest)?;
        let name = part.name().unwrap_or("").to_string();
        let filename = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let declared_type = part
            .content_type()
            .map(|m| m.essence_str().to_string())
            .unwrap_or_default();
        if filename.is_some() && !verified {
            return Err(AppError::Csrf);
        }
        // A file input, of a file question some survey has in a section of this id.
        let file_limit = filename.as_ref().and(budget.per_file.get(&name)).copied();
        let limit = file_limit.unwrap_or(MAX_FORM_BYTES as u64);
        let mut data = Vec::new();
        let mut too_large = false;
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest)?;
            total += chunk.len() as u64;
            if total > budget.total {
                return Err(AppError::TooLarge);
            }
            if too_large {
                continue;
            }
            if (data.len() + chunk.len()) as u64 > limit {
                if file_limit.is_none() {
                    return Err(AppError::TooLarge);
                }
                // Read on without keeping it: refused next to its field.
                too_large = true;
                data = Vec::new();
                continue;
            }
            data.extend_from_slice(&chunk);
        }
        match (filename, file_limit) {
            (Some(filename), Some(_)) => {
                // A file input left empty sends an unnamed, empty part.
                if filename.is_empty() && data.is_empty() && !too_large {
                    continue;
                }
                let content = if too_large {
                    Content::TooLarge
                } else {
                    Content::Bytes(data)
                };
                post.files.entry(name).or_default().uploads.push(Upload {
                    name: filename,
                    declared_type,
                    content,
                });
            }
            // A file where no file question is: ignored.
            (Some(_), None) => {}
            (None, _) => {
                text_total += data.len();
                if text_total > MAX_FORM_BYTES {
                    return Err(AppError::TooLarge);
                }
                let value = String::from_utf8(data).map_err(|_| AppError::BadRequest)?;
                if !verified && name == crate::web::csrf::FIELD {
                    extract::verify_form(req, &[(name.clone(), value.clone())])?;
                    verified = true;
                }
                post.push_field(budget, name, value);
            }
        }
    }
    Ok(post)
}

/// A stored file sent back for download: always an attachment, never sniffed or rendered.
pub fn file_response(meta: &FileMeta, content: Vec<u8>) -> HttpResponse {
    let media = FileType::parse(&meta.detected_type)
        .map(FileType::media_type)
        .unwrap_or("application/octet-stream");
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media))
        .insert_header((
            header::CONTENT_DISPOSITION,
            crate::files::content_disposition(&meta.name),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(content)
}

/// `GET /r/<link>/files/<id>`: a file of the link's own response, in a section the link may
/// answer (a contributor only its own). Anything else is an unknown page.
pub async fn download(
    link: Respondent,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let file_id = path.into_inner().1;
    let (_, found) = link
        .resolve(false, move |conn, _, who, survey| {
            let Some((meta, owner, content)) = files::get(conn, &file_id)? else {
                return Ok(None);
            };
            let own = owner.survey_id == survey.id
                && owner.country_iso3 == who.token.country_iso3
                && owner.unit == who.token.unit;
            let section = survey
                .sections
                .iter()
                .find(|s| s.questions.iter().any(|q| q.id == meta.question_id));
            let may = section.is_some_and(|s| who.may_answer(&s.id));
            Ok((own && may).then_some((meta, content)))
        })
        .await?;
    let (meta, content) = found.ok_or(AppError::NotFound)?;
    Ok(file_response(&meta, content))
}

/// `GET /admin/surveys/<id>/countries/<iso3>/files/<file>`: a file of the survey, for its
/// owners and the administrators (another owner gets 403 from [`SurveyAdmin`], a file of
/// another survey or country 404).
pub async fn admin_file(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, iso3, id) = path.into_inner();
    let survey_id = scope.survey.id.clone();
    let iso3 = Some(iso3.to_ascii_uppercase());
    let found = extract::with_conn(&state, move |conn| {
        let Some((meta, owner, content)) = files::get(conn, &id)? else {
            return Ok(None);
        };
        let ours =
            owner.survey_id == survey_id && iso3.as_deref().is_none_or(|c| c == owner.country_iso3);
        Ok(ours.then_some((meta, content)))
    })
    .await?;
    let (meta, content) = found.ok_or(AppError::NotFound)?;
    Ok(file_response(&meta, content))
}
