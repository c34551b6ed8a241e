//! Console pages. (The queue, request, history and account pages arrive with the
//! console issue; until then `/` lists the queue plainly.)

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use signoff_app::ui::{Nav, signin_page};

use crate::api::AppState;
use crate::auth::Person;
use crate::auth::device::no_access;
use crate::web::chrome;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(State(state): State<AppState>, person: Option<Person>) -> Response {
    let Some(person) = person else {
        let page = signin_page(chrome(&state, None, "Sign in", Nav::None), "/", state.auth.dev);
        return Html(page).into_response();
    };
    if person.roles.is_empty() {
        return no_access(&state, &person);
    }
    let page = signoff_app::ui::placeholder_page(chrome(&state, Some(&person), "Queue", Nav::Queue), "Queue");
    Html(page).into_response()
}
