// The dashboard's shell: sign-in, the view named in the URL's hash, and, for the admin key,
// the user the views report on.
import { ApiError, get, session, whenUnauthorized } from "./api.js";
import { $, el, setState } from "./dom.js";
import * as costs from "./costs.js";
import * as health from "./health.js";
import * as models from "./models.js";
import * as tryIt from "./try.js";
import * as users from "./users.js";

const VIEWS = { models, users, health, costs, try: tryIt };
const who = { me: null, admin: false, subject: null };

async function signIn(key) {
  session.key = key;
  const report = await get("/analytics/user");
  who.me = report.user_id;
  who.admin = await get("/admin/users").then((list) => { fillSubjects(list); return true; },
    (e) => { if (e instanceof ApiError && e.status === 403) return false; throw e; });
  who.subject = who.admin ? null : who.me;
  $("#who").textContent = who.admin ? `${who.me} (admin)` : who.me;
  $("#subject-picker").hidden = !who.admin;
  $("#login").hidden = true;
  $("#nav").hidden = $("#session").hidden = false;
  await showView();
}

function fillSubjects(list) {
  $("#subject").replaceChildren(el("option", { value: "" }, "All users"),
    ...list.map((u) => el("option", { value: u.id }, `${u.name} (${u.id})`)));
}

function signOut(message = "") {
  session.clear();
  health.stop();
  Object.assign(who, { me: null, admin: false, subject: null });
  document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
  $("#nav").hidden = $("#session").hidden = true;
  $("#login").hidden = false;
  $("#api-key").value = "";
  $("#login-error").textContent = message;
}

function currentView() {
  const name = location.hash.slice(1);
  return VIEWS[name] ? name : "models";
}

async function showView() {
  if (!who.me) return;
  const name = currentView();
  health.stop();
  for (const other of Object.keys(VIEWS)) $(`#view-${other}`).hidden = other !== name;
  document.querySelectorAll("#nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.view === name ? "page" : "false"));
  const view = $(`#view-${name}`);
  if (!VIEWS[name].show) return;
  view.setAttribute("aria-busy", "true");
  try {
    await VIEWS[name].show(view, who);
  } catch (e) {
    if (who.me) setState(view, "error", `Could not load this view: ${e.message}`);
  } finally {
    view.setAttribute("aria-busy", "false");
  }
}

function bind() {
  whenUnauthorized((message) => signOut(message));
  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn($("#api-key").value.trim());
    } catch (e) {
      signOut(e instanceof ApiError && e.status === 401 ? e.message : `Could not sign in: ${e.message}`);
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#subject").addEventListener("change", (event) => { who.subject = event.target.value || null; showView(); });
  window.addEventListener("hashchange", showView);
  models.bind(showView);
  costs.bind(showView);
  tryIt.bind($("#view-try"));
}

bind();
if (session.key) signIn(session.key).catch((e) => signOut(`Could not sign in: ${e.message}`));
else signOut();
