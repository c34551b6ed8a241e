//! The signed-in person: identity as the provider gave it, roles, terminal tokens.

use leptos::prelude::*;

use super::format::timestamp;
use super::shell::{Chrome, render};
use crate::wire::{Me, Role, TokenInfo};

pub fn account_page(chrome: Chrome, me: Me, tokens: Vec<TokenInfo>) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let roles = me
        .roles
        .iter()
        .map(|role| match role {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        })
        .collect::<Vec<_>>()
        .join(", ");
    let identity = me.identity;
    let body = view! {
        <h1>"Your account"</h1>
        <section class="card">
            <h2>"Identity"</h2>
            <p class="muted small">"As your organisation's sign-in provider described you when you signed in."</p>
            <dl class="facts">
                <dt>"Name"</dt><dd>{identity.name.clone().unwrap_or_default()}</dd>
                <dt>"Email"</dt><dd>{identity.email.clone().unwrap_or_default()}</dd>
                <dt>"Subject"</dt><dd><code>{identity.subject.clone()}</code></dd>
                <dt>"Issuer"</dt><dd><code>{identity.issuer.clone()}</code></dd>
                <dt>"Groups"</dt><dd>{identity.groups.join(", ")}</dd>
                <dt>"Roles"</dt><dd>{roles}</dd>
                {me.auth_time.map(|at| view! { <dt>"Signed in"</dt><dd>{timestamp(at)}</dd> })}
            </dl>
        </section>
        <section class="card">
            <h2>"Terminal tokens"</h2>
            <p class="muted small">"Tokens of the " <code>"signoff"</code> " terminal client signed in as you. Revoke any you do not recognise."</p>
            {if tokens.is_empty() {
                view! { <p class="empty">"No active terminal tokens."</p> }.into_any()
            } else {
                view! {
                    <table id="tokens" class="requests">
                        <thead><tr><th scope="col">"Terminal"</th><th scope="col">"Created"</th><th scope="col">"Expires"</th><th scope="col"></th></tr></thead>
                        <tbody>
                            {tokens.into_iter().map(|token| {
                                let action = format!("/me/tokens/{}/revoke", token.id);
                                let csrf = csrf.clone();
                                view! {
                                    <tr>
                                        <td>{token.client_name.unwrap_or_else(|| "unnamed".into())}</td>
                                        <td>{timestamp(token.created_at)}</td>
                                        <td>{timestamp(token.expires_at)}</td>
                                        <td>
                                            <form method="post" action=action>
                                                <input type="hidden" name="csrf" value=csrf />
                                                <button type="submit" class="button danger">"Revoke"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <p><a href="/device">"Sign in a terminal"</a></p>
        </section>
    };
    render(chrome, body)
}
