use leptos::prelude::*;

/// The landing page of the dashboard. The "live" badge flips to "hydrated" only once the WASM bundle
/// has taken over the server-rendered markup, which is what the end-to-end test checks.
#[component]
pub fn HomePage() -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let (details, set_details) = signal(false);
    view! {
        <header class="topbar">
            <h1>"Racky video generation"</h1>
            <span class="badge" data-testid="hydration">
                {move || if hydrated.get() { "hydrated" } else { "server-rendered" }}
            </span>
        </header>
        <section class="card">
            <p>
                "This service takes bulk video requests, calls the RCK Description server and records every callback it receives."
            </p>
            <button
                type="button"
                data-testid="toggle-details"
                aria-expanded=move || details.get().to_string()
                on:click=move |_| set_details.update(|d| *d = !*d)
            >
                {move || if details.get() { "Hide endpoints" } else { "Show endpoints" }}
            </button>
            <Show when=move || details.get()>
                <ul class="endpoints" data-testid="endpoints">
                    <li><code>"POST /internal/videos/success"</code></li>
                    <li><code>"POST /internal/videos/failure"</code></li>
                    <li><code>"GET /api/webhook-events"</code></li>
                    <li><code>"GET /api/webhook-events/:id"</code></li>
                </ul>
            </Show>
        </section>
    }
}
