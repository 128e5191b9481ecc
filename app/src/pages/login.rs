use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Sign-in: a plain form posting to `/login`, which sets the session cookie (works without WASM).
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    view! {
        <main id="main" class="login-page">
            <section class="card login-card">
                <h1>"Racky videos"</h1>
                <p class="muted">"Sign in to the monitoring dashboard."</p>
                <Show when=failed>
                    <p class="notice notice-error" role="alert" data-testid="login-error">
                        "Invalid email or password."
                    </p>
                </Show>
                <form method="post" action="/login" class="form">
                    <input type="hidden" name="next" value=next/>
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required/>
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    <button type="submit" class="btn btn-primary" data-testid="login-submit">"Sign in"</button>
                </form>
            </section>
        </main>
    }
}
