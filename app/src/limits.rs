//! Limits on what an agent may submit. Bodies past these are refused, never truncated.
//! A leaf: the wire types, their OpenAPI schemas and the server all read it.

pub const BODY_BYTES: usize = 1024 * 1024;
pub const DIFF_BYTES: usize = 256 * 1024;
pub const ACTION_CHARS: usize = 128;
pub const RESOURCE_CHARS: usize = 512;
pub const TITLE_CHARS: usize = 200;
pub const REASON_CHARS: usize = 8 * 1024;
pub const LABELS: usize = 32;
pub const LABEL_KEY_CHARS: usize = 64;
pub const LABEL_VALUE_CHARS: usize = 256;
pub const PERSON_CHARS: usize = 320;
pub const COMMENT_CHARS: usize = 4 * 1024;
pub const IDEMPOTENCY_KEY_CHARS: usize = 255;
pub const MAX_TTL_S: u64 = 30 * 24 * 3600;
pub const MAX_WAIT_S: u64 = 300;
