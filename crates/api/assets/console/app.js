// The console's shell: log in and out, the menu per role, the language, and the router
// (`#/search`, `#/record/<id>`, `#/register`, `#/queue`, `#/requests`, `#/request/<id>`, `#/audit`, `#/mine`,
// `#/myrequests`).

import { ApiError, gql, setToken, token } from "./api.js";
import { lang, setLang, t } from "./i18n.js";
import { registrationsPart } from "./forms.js";
import { myRequestsView, requestView, requestsView } from "./requests.js";
import { auditView, errorBox, h, loginView, mineView, queueView, recordView, searchView } from "./views.js";

const MENUS = {
  steward: ["search", "register", "requests"],
  supervisor: ["search", "register", "queue", "requests"],
  auditor: ["search", "audit"],
  admin: ["audit"],
  citizen: ["mine", "myrequests"],
};

let me = null;

async function whoAmI() {
  if (!token()) return null;
  try {
    return (await gql("{ me { id role } }")).me;
  } catch {
    setToken(null);
    return null;
  }
}

function shell() {
  document.title = t("title");
  document.getElementById("brand").setAttribute("title", t("title"));
  const langButton = document.getElementById("lang");
  langButton.textContent = t("lang");
  langButton.onclick = () => {
    setLang(lang() === "vi" ? "en" : "vi");
    route();
  };
  const nav = document.getElementById("nav");
  const current = location.hash.split("?")[0].replace(/^#\//, "").split("/")[0];
  nav.replaceChildren(...(me ? MENUS[me.role] ?? [] : []).map((m) =>
    h("a", { href: `#/${m}`, "aria-current": m === current ? "page" : null }, t(`nav_${m}`))));
  const who = document.getElementById("who");
  who.replaceChildren(...(me
    ? [`${t("signedInAs")}: `, h("strong", {}, me.id), ` (${t(`role_${me.role}`)}) `,
      h("button", { type: "button", id: "logout", onclick: logout }, t("logout"))]
    : []));
}

async function logout() {
  if (me?.role === "citizen") {
    // Log out for real: the citizen's tokens are revoked on the server.
    try { await gql("mutation { revokeCitizenToken }"); } catch { /* the token may be gone already */ }
  }
  setToken(null);
  me = null;
  show("#/");
}

async function login(value) {
  setToken(value);
  const who = await gql("{ me { id role } }").then((d) => d.me).catch((e) => {
    setToken(null);
    throw e;
  });
  me = who;
  show(`#/${(MENUS[me.role] ?? ["search"])[0]}`);
}

/** Shows `hash`'s page once. A changed hash routes through the `hashchange` it causes;
 * calling `route` as well rendered the page twice, and the second render replaced a field the
 * user had already typed into. */
function show(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  document.documentElement.lang = lang();
  if (!me) me = await whoAmI();
  shell();
  const main = document.getElementById("view");
  if (!me) {
    loginView(main, login);
    return;
  }
  if (me.role === "service") {
    main.replaceChildren(errorBox(new ApiError("FORBIDDEN", t("serviceNotHere"))));
    return;
  }
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, arg] = path.split("/");
  const menu = MENUS[me.role] ?? [];
  if (page === "record" && arg) recordView(main, decodeURIComponent(arg), me);
  else if (page === "search" && menu.includes("search")) searchView(main, new URLSearchParams(query ?? ""));
  else if (page === "queue" && menu.includes("queue")) queueView(main, me);
  else if (page === "register" && menu.includes("register")) {
    main.replaceChildren(h("h1", {}, t("nav_register")), registrationsPart());
  }
  else if (page === "audit" && menu.includes("audit")) auditView(main, me);
  else if (page === "mine" && menu.includes("mine")) mineView(main, me);
  else if (page === "requests" && menu.includes("requests")) requestsView(main);
  else if (page === "request" && arg && menu.includes("requests")) requestView(main, decodeURIComponent(arg));
  else if (page === "myrequests" && menu.includes("myrequests")) myRequestsView(main);
  else location.hash = `#/${menu[0] ?? "search"}`;
}

window.addEventListener("hashchange", route);
route();
