//! Evidence anyone can check without trusting the server or its database: the audit log
//! as a Merkle tree ([`tree`]), signed checkpoints of it ([`note`]) and approval receipts
//! ([`receipt`]). Pure: the server stores and serves them, the command lines check them.

pub mod note;
pub mod receipt;
pub mod tree;
