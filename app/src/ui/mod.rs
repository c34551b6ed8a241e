//! The console's pages, rendered on the server with Leptos. Every action is a plain
//! HTML form; `/static/console.js` only adds live updates and keyboard triage.
//!
//! All text from agents is untrusted: Leptos escapes every text node and attribute, no
//! page uses inline script or style (the Content-Security-Policy forbids both), and
//! [`visible::agent_text`] shows the characters a reviewer could not otherwise see.

mod account;
mod admin;
mod diff;
pub mod format;
mod history;
mod queue;
mod request;
mod shell;
mod signin;
mod textarea;
pub mod visible;

pub use account::account_page;
pub use admin::{
    AdminCounts, AgentRow, AgentsView, AuditFilters, AuditRow, AuditView, ChannelRow, CheckpointView, DeliveryRow,
    FollowupItem, GrantRow, Notice, PolicyEditView, PolicyForm, PolicyRow, TestResult, TestView, VersionRow,
    VersionsView, WhatIfResult, WhatIfRow, WhatIfView, admin_page, agents_page, audit_page, channels_page,
    deliveries_page, followups_panel, grants_page, policies_page, policy_edit_page, policy_versions_page,
    test_request_page, what_if_page,
};
pub use history::{HistoryFilters, HistoryView, history_page};
pub use queue::{QueueFilters, QueueView, queue_fragment, queue_page, queue_rows};
pub use request::{DiffMode, RequestPageView, TimelineEntry, request_page};

pub use shell::{Chrome, Nav, UserBadge, placeholder_page, render};
pub use signin::{
    DevUser, DeviceCodeView, DevicePage, SlackLinkPage, dev_signin_page, device_page, error_page, no_access_page,
    signed_out_page, signin_page, slack_link_page, url_encode,
};
