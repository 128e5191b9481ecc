use crate::components::data::page_data;
use crate::components::{Ago, DataTable, IdChip, Layout, Loaded, Pager};
use crate::model::dashboard::WorkspacePage;
use crate::model::filters::NotificationFilter;
use crate::model::notify::{ChannelResult, NotificationPage, NotificationSettings};
use crate::server_fns::{
    load_notification_settings, load_notifications, load_workspaces, RedeliverNotification,
    RotateNotificationSecret, SaveNotificationSettings, TestNotifications,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// Notifications: a workspace's settings (email, Slack, Discord, the signed webhook, "Send test")
/// and the delivery log with its filters and redelivery. Everything in the URL; forms work before
/// hydration.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        NotificationFilter {
            page: get("page"),
            limit: Some("25".into()),
            workspace_id: get("workspaceId"),
            status: get("status"),
        }
    });
    let workspace = move || filter.read().workspace_id.clone();
    let workspaces = page_data(|| (), |_| load_workspaces());
    let log = page_data(move || filter.get(), load_notifications);
    let redeliver = ServerAction::<RedeliverNotification>::new();
    Effect::new(move |_| {
        if redeliver.value().get().is_some() {
            log.refetch();
        }
    });
    let status_is = move |s: &'static str| move || filter.read().status.as_deref() == Some(s);

    view! {
        <Layout>
            <div class="page-header">
                <h1>"Notifications"</h1>
            </div>
            <Form method="GET" action="/notifications" attr:class="filters" attr:aria-label="Choose a workspace and filter the log">
                <label>
                    "Workspace"
                    <select name="workspaceId" data-testid="workspace-select">
                        <option value="" selected=move || workspace().is_none()>"All (log only)"</option>
                        <Transition fallback=|| ()>
                            {move || workspaces.get().and_then(|r| r.ok()).map(|page: WorkspacePage| {
                                // The first workspaces by name; one chosen by `workspaceId=` (from
                                // its card on the workspaces page) is listed even when it is not
                                // among them.
                                let chosen = workspace().filter(|id| !page.workspaces.iter().any(|w| w.id.to_string() == *id));
                                let listed = page.workspaces.into_iter().map(|w| {
                                    let id = w.id.to_string();
                                    let selected = { let id = id.clone(); move || workspace().as_deref() == Some(id.as_str()) };
                                    view! { <option value=id selected=selected>{w.name}</option> }
                                }).collect_view();
                                let extra = chosen.map(|id| { let label = id.clone(); view! { <option value=id selected=true>{label}</option> } });
                                (listed, extra)
                            })}
                        </Transition>
                    </select>
                </label>
                <label>
                    "Status"
                    <select name="status">
                        <option value="" selected=move || filter.read().status.is_none()>"Any"</option>
                        <option value="pending" selected=status_is("pending")>"pending"</option>
                        <option value="delivered" selected=status_is("delivered")>"delivered"</option>
                        <option value="failed" selected=status_is("failed")>"failed"</option>
                    </select>
                </label>
                <button type="submit" class="btn btn-primary">"Apply"</button>
                <a href="/notifications" class="btn btn-secondary">"Clear"</a>
            </Form>
            {move || workspace().map(|ws| view! { <SettingsCard workspace_id=ws/> })}
            <h2>"Delivery log"</h2>
            <Show when=move || matches!(redeliver.value().get(), Some(Err(_)))>
                <p class="notice notice-error" role="alert">
                    {move || redeliver.value().get().and_then(|r| r.err()).map(|e| e.to_string()).unwrap_or_default()}
                </p>
            </Show>
            <Loaded resource=log then=move |page: NotificationPage| {
                if page.notifications.is_empty() {
                    return view! { <p class="card muted" data-testid="no-notifications">"No notifications match."</p> }.into_any();
                }
                let p = page.pagination.clone();
                let rows = page.notifications.into_iter().map(|n| {
                    let id = n.id.to_string();
                    let status = n.status.as_str();
                    view! {
                        <tr data-testid="notification-row" data-status=status>
                            <td><Ago at=n.created_at/></td>
                            <td>{n.channel.as_str()}</td>
                            <td>{n.event_type.clone()}</td>
                            <td>{n.video_id.map(|v| view! { <a href=format!("/videos/{v}")>"Video"</a> " " <IdChip id=v.to_string()/> })}</td>
                            <td><span class=format!("badge badge-{status}")>{status}</span></td>
                            <td>{n.attempts}</td>
                            <td class="wrap">{n.last_error.clone().unwrap_or_default()}</td>
                            <td class="actions">
                                <ActionForm action=redeliver>
                                    <input type="hidden" name="id" value=id/>
                                    <button type="submit" class="btn btn-secondary" data-testid="redeliver">"Redeliver"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <DataTable caption="Notifications, newest first" testid="notifications-table" columns=&["Created", "Channel", "Event", "Video", "Status", "Attempts", "Last error", "Actions"]>
                        {rows}
                    </DataTable>
                    <Pager path="/notifications" filter=NotificationFilter { limit: None, ..filter.get_untracked() } page=p.page total_pages=p.total_pages total=p.total/>
                }.into_any()
            }/>
        </Layout>
    }
}

/// One workspace's settings form, its secret, and "Send test".
#[component]
fn SettingsCard(workspace_id: String) -> impl IntoView {
    let save = ServerAction::<SaveNotificationSettings>::new();
    let rotate = ServerAction::<RotateNotificationSecret>::new();
    let test = ServerAction::<TestNotifications>::new();
    let ws = workspace_id.clone();
    let settings = page_data(
        move || (ws.clone(), save.version().get(), rotate.version().get()),
        |(ws, _, _)| load_notification_settings(ws),
    );
    let ws_for_forms = workspace_id.clone();
    view! {
        <section class="card" data-testid="notification-settings">
            <h2>"Settings"</h2>
            <Show when=move || matches!(save.value().get(), Some(Err(_)))>
                <p class="notice notice-error" role="alert" data-testid="settings-error">
                    {move || save.value().get().and_then(|r| r.err()).map(|e| e.to_string()).unwrap_or_default()}
                </p>
            </Show>
            <Show when=move || matches!(save.value().get(), Some(Ok(_)))>
                <p class="notice" role="status" data-testid="settings-saved">"Saved."</p>
            </Show>
            <Loaded resource=settings then=move |s: NotificationSettings| {
                let (ws1, ws2, ws3) = (ws_for_forms.clone(), ws_for_forms.clone(), ws_for_forms.clone());
                let secret = s.webhook_secret.clone().unwrap_or_default();
                view! {
                    <ActionForm action=save attr:class="settings-form">
                        <input type="hidden" name="workspace_id" value=ws1/>
                        <fieldset>
                            <legend>"Email the user who asked for the videos (once the whole batch is done)"</legend>
                            <label class="checkbox">
                                <input type="checkbox" name="on_completed" value="on" checked=s.email.on_completed/>
                                "when videos are ready"
                            </label>
                            <label class="checkbox">
                                <input type="checkbox" name="on_failed" value="on" checked=s.email.on_failed/>
                                "when videos fail"
                            </label>
                        </fieldset>
                        <label>
                            "Slack incoming webhook URL"
                            <input name="slack_webhook_url" type="url" size="48" placeholder="https://hooks.slack.com/services/…" value=s.slack_webhook_url.clone().unwrap_or_default() data-testid="slack-url"/>
                        </label>
                        <label>
                            "Discord webhook URL"
                            <input name="discord_webhook_url" type="url" size="48" placeholder="https://discord.com/api/webhooks/…" value=s.discord_webhook_url.clone().unwrap_or_default() data-testid="discord-url"/>
                        </label>
                        <label>
                            "Webhook URL (signed, Standard Webhooks)"
                            <input name="webhook_url" type="url" size="48" placeholder="https://shop.example/hooks/videos" value=s.webhook_url.clone().unwrap_or_default() data-testid="webhook-url"/>
                        </label>
                        <button type="submit" class="btn btn-primary" data-testid="save-settings">"Save"</button>
                    </ActionForm>
                    <p>
                        "Signing secret: " <code data-testid="webhook-secret">{secret}</code>
                    </p>
                    <div class="inline-forms">
                        <ActionForm action=rotate>
                            <input type="hidden" name="workspace_id" value=ws2/>
                            <button type="submit" class="btn btn-secondary" data-testid="rotate-secret">"Rotate secret"</button>
                        </ActionForm>
                        <ActionForm action=test>
                            <input type="hidden" name="workspace_id" value=ws3/>
                            <button type="submit" class="btn btn-secondary" data-testid="send-test" disabled=move || test.pending().get()>"Send test"</button>
                        </ActionForm>
                    </div>
                }
            }/>
            <div aria-live="polite" data-testid="test-results">
                {move || test.value().get().map(|r| match r {
                    Ok(results) if results.is_empty() => view! { <p class="muted">"No channel is configured."</p> }.into_any(),
                    Ok(results) => view! {
                        <ul class="test-results">
                            {results.into_iter().map(|r: ChannelResult| view! {
                                <li data-testid="test-result" data-ok=r.ok.to_string()>
                                    <strong>{r.channel.as_str()}</strong> " → " {r.target.clone()} ": "
                                    {if r.ok { "sent".to_string() } else { format!("failed: {}", r.error.clone().unwrap_or_default()) }}
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </div>
        </section>
    }
}
