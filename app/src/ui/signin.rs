//! Pages around signing in: the sign-in prompt, no access, dev sign-in, terminal
//! sign-in confirmation, signed out, and errors.

use leptos::prelude::*;

use super::shell::{Chrome, render};

pub fn signin_page(chrome: Chrome, next: &str, dev_signin: bool) -> String {
    let href = format!("/auth/login?next={}", url_encode(next));
    render(
        chrome,
        view! {
            <section class="card narrow">
                <h1>"Sign in to Signoff"</h1>
                <p>"Reviewers and admins sign in with the organisation's single sign-on."</p>
                <p><a class="button primary" href=href>"Sign in with SSO"</a></p>
                {dev_signin.then(|| view! { <p><a href="/auth/dev">"Development sign-in"</a></p> })}
            </section>
        },
    )
}

pub fn no_access_page(chrome: Chrome, email: String, groups: Vec<String>, granting: Vec<String>) -> String {
    let groups = if groups.is_empty() {
        "none".to_string()
    } else {
        groups.join(", ")
    };
    render(
        chrome,
        view! {
            <section class="card narrow">
                <h1>"You have no access to Signoff"</h1>
                <p>"You are signed in as " <strong>{email}</strong> ", but none of your groups gives you a role here."</p>
                <dl class="facts">
                    <dt>"Your groups"</dt><dd>{groups}</dd>
                    <dt>"Groups with access"</dt><dd>{granting.join(", ")}</dd>
                </dl>
                <p>"Ask your administrator to add you to one of those groups, then sign in again."</p>
            </section>
        },
    )
}

pub fn signed_out_page(chrome: Chrome) -> String {
    render(
        chrome,
        view! {
            <section class="card narrow">
                <h1>"You are signed out"</h1>
                <p><a class="button" href="/auth/login">"Sign in again"</a></p>
            </section>
        },
    )
}

pub fn error_page(chrome: Chrome, status: u16, message: String) -> String {
    let heading = match status {
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        409 => "That cannot happen now",
        502 => "The sign-in provider did not answer as expected",
        400..=499 => "That did not work",
        _ => "Something went wrong on our side",
    };
    let back = if status == 401 {
        ("/auth/login", "Sign in")
    } else {
        ("/", "Back to the queue")
    };
    render(
        chrome,
        view! {
            <section class="card narrow error">
                <p class="status">{format!("Error {status}")}</p>
                <h1>{heading}</h1>
                <p class="message">{message}</p>
                <p><a class="button" href=back.0>{back.1}</a></p>
            </section>
        },
    )
}

/// A fixed development user.
#[derive(Clone, Debug)]
pub struct DevUser {
    pub key: String,
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
}

pub fn dev_signin_page(chrome: Chrome, users: Vec<DevUser>, csrf: String, next: String) -> String {
    render(
        chrome,
        view! {
            <section class="card narrow">
                <h1>"Development sign-in"</h1>
                <p>"Pick a fixed user. This page exists only with " <code>"--dev"</code> " on 127.0.0.1."</p>
                <ul class="choices">
                    {users.into_iter().map(|user| {
                        let csrf = csrf.clone();
                        let next = next.clone();
                        view! {
                            <li>
                                <form method="post" action="/auth/dev">
                                    <input type="hidden" name="csrf" value=csrf />
                                    <input type="hidden" name="user" value=user.key />
                                    <input type="hidden" name="next" value=next />
                                    <button type="submit" class="button">{format!("Sign in as {}", user.name)}</button>
                                    <span class="muted">{format!("{} · {}", user.email, user.groups.join(", "))}</span>
                                </form>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        },
    )
}

/// A device code awaiting the reviewer's answer.
#[derive(Clone, Debug)]
pub struct DeviceCodeView {
    pub user_code: String,
    pub client_name: String,
    pub client_address: String,
    pub requested: String,
}

pub enum DevicePage {
    /// Ask for the code shown in the terminal. Never pre-filled: a link that carries a
    /// code is how a sign-in someone else started gets confirmed by one click.
    Enter { error: Option<String>, from_link: bool },
    /// Show what is asking, and ask to confirm.
    Confirm(DeviceCodeView),
    /// Answered.
    Done { approved: bool },
}

pub fn device_page(chrome: Chrome, page: DevicePage) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = match page {
        DevicePage::Enter { error, from_link } => view! {
            <section class="card narrow">
                <h1>"Sign in a terminal"</h1>
                <p>"Type the code that " <code>"signoff login"</code> " shows in " <strong>"your own"</strong> " terminal."</p>
                {from_link.then(|| view! {
                    <p class="notice" id="typed-code-note">"This link carried a code. Signoff does not take codes from links: \
                        if you did not run " <code>"signoff login"</code> " yourself just now, stop here."</p>
                })}
                {error.map(|error| view! { <p class="notice bad" role="alert">{error}</p> })}
                <form method="post" action="/device" class="stack">
                    <input type="hidden" name="csrf" value=csrf.clone() />
                    <label for="user_code">"Code"</label>
                    <input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters"
                        placeholder="ABCD-EFGH" required=true maxlength="16" />
                    <button type="submit" class="button primary">"Continue"</button>
                </form>
            </section>
        }
        .into_any(),
        DevicePage::Confirm(code) => view! {
            <section class="card narrow">
                <h1>"Confirm terminal sign-in"</h1>
                <p>"A terminal asks to act as you in Signoff. Confirm only if you started it yourself, from this address, just now."</p>
                <dl class="facts">
                    <dt>"Code"</dt><dd class="code">{code.user_code.clone()}</dd>
                    <dt>"Started from address"</dt><dd id="device-address">{code.client_address}</dd>
                    <dt>"Started at"</dt><dd id="device-started">{code.requested}</dd>
                    <dt>"Terminal name"</dt>
                    <dd id="device-name">{code.client_name}
                        " " <span class="muted">"(as the terminal claims it; anyone can claim any name)"</span></dd>
                </dl>
                <form method="post" action="/device" class="actions">
                    <input type="hidden" name="csrf" value=csrf.clone() />
                    <input type="hidden" name="user_code" value=code.user_code />
                    <button type="submit" name="answer" value="approve" class="button primary">"Confirm sign-in"</button>
                    <button type="submit" name="answer" value="deny" class="button">"Refuse"</button>
                </form>
            </section>
        }
        .into_any(),
        DevicePage::Done { approved } => view! {
            <section class="card narrow">
                <h1>{if approved { "Terminal signed in" } else { "Sign-in refused" }}</h1>
                <p>{if approved {
                    "You can close this page; the terminal continues by itself."
                } else {
                    "The terminal will not be signed in."
                }}</p>
            </section>
        }
        .into_any(),
    };
    render(chrome, body)
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for query values.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped() {
        let page = error_page(Chrome::new("Oops"), 404, "<script>alert(1)</script>".into());
        assert!(!page.contains("<script>alert(1)</script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.starts_with("<!DOCTYPE html><html"));
    }

    #[test]
    fn device_confirmation_shows_the_terminal_and_code() {
        let mut chrome = Chrome::new("Device");
        chrome.csrf = Some("tok".into());
        let page = device_page(
            chrome,
            DevicePage::Confirm(DeviceCodeView {
                user_code: "BCDF-GHJK".into(),
                client_name: "oncall-laptop".into(),
                client_address: "127.0.0.1".into(),
                requested: "2 minutes ago".into(),
            }),
        );
        for expected in [
            "BCDF-GHJK",
            "oncall-laptop",
            "name=\"csrf\" value=\"tok\"",
            "value=\"approve\"",
        ] {
            assert!(page.contains(expected), "missing {expected}");
        }
    }
}

/// The page that links a Slack user to the person signed in.
#[derive(Clone, Debug)]
pub enum SlackLinkPage {
    Confirm {
        token: String,
        slack_user: String,
        team: String,
        email: String,
    },
    Done,
    Unknown,
}

pub fn slack_link_page(chrome: Chrome, page: SlackLinkPage) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = match page {
        SlackLinkPage::Confirm { token, slack_user, team, email } => view! {
            <section class="card narrow">
                <h1>"Link your Slack account"</h1>
                <p>"Slack user " <code id="slack-user">{slack_user}</code> " (workspace " <code>{team}</code> ") asks to decide requests from Slack as "
                    <strong id="slack-identity">{email}</strong> ". Link only if you clicked a Signoff button in Slack yourself, just now."</p>
                <form method="post" action=format!("/integrations/slack/link/{token}") class="actions">
                    <input type="hidden" name="csrf" value=csrf />
                    <button type="submit" class="button primary" id="link-slack">"Link my Slack account"</button>
                </form>
            </section>
        }
        .into_any(),
        SlackLinkPage::Done => view! {
            <section class="card narrow">
                <h1>"Slack account linked"</h1>
                <p>"Go back to Slack and click the button again: your decisions there are recorded under your sign-in."</p>
            </section>
        }
        .into_any(),
        SlackLinkPage::Unknown => view! {
            <section class="card narrow">
                <h1>"This link cannot be used"</h1>
                <p>"It is unknown, used or expired (links last 10 minutes). Click the button in Slack again for a new one."</p>
            </section>
        }
        .into_any(),
    };
    render(chrome, body)
}
