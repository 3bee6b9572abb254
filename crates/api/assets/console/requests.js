// Correction requests (Law 91/2025/QH15 art. 13): a citizen files, follows and withdraws their
// own (`#/myrequests`); stewards and supervisors handle the open ones, nearest deadline first
// (`#/requests`, `#/request/<id>`). The server filters a citizen's list to their own record.

import { gql } from "./api.js";
import { date, instant, t, today } from "./i18n.js";
import { showError } from "./forms.js";
import { dl, done, h, load, recordLink, section, status, table } from "./views.js";

const REQUEST_FIELDS = `id citizen field proposedValue reason evidence status submitted acknowledgeBy dueBy
  overdue overdueDeadlines acknowledgedBy extension { days reason } resolvedByCorrection refusalReason
  refusalLegalBasis version`;

/** The fields a citizen may ask to correct (the server's list, `RequestCorrectionInput.field`). */
const CORRECTABLE = ["name.family", "name.middle", "name.given", "birth_date", "sex", "birth_place",
  "pin", "permanent_residence", "temporary_residence", "identity_card"];

const OPEN = ["SUBMITTED", "ACKNOWLEDGED"];
const isOpen = (r) => OPEN.includes(r.status);

/** The deadline an open request runs against now: acknowledging first, then resolving. */
const nextDeadline = (r) => (r.status === "SUBMITTED" ? r.acknowledgeBy : r.dueBy);

/**
 * Overdue: recorded so on the request's stream, or open with its deadline passed today in Hải
 * Phòng (the server's sweep records it at its next run; the citizen need not wait for it).
 */
const overdue = (r) => r.overdue || (isOpen(r) && nextDeadline(r) < today());

const fieldName = (f) => (t(`cf_${f}`) === `cf_${f}` ? f : t(`cf_${f}`));

function deadlines(r) {
  return h("span", {},
    `${t("acknowledgeBy")}: ${date(r.acknowledgeBy)}`, h("br"),
    `${t("dueBy")}: ${date(r.dueBy)}`,
    r.extension ? [" (", t("extendedBy", { days: r.extension.days, reason: r.extension.reason }), ")"] : null,
    overdue(r) ? [" ", h("span", { class: "badge overdue" }, t("overdue"))] : null);
}

function outcome(r) {
  if (r.status === "RESOLVED") return t("resolvedBy", { id: r.resolvedByCorrection ?? "" });
  if (r.status === "REFUSED") return t("refusedBecause", { reason: r.refusalReason ?? "", basis: r.refusalLegalBasis ?? "" });
  return "";
}

/** Every request the caller may see, page by page (50 a page keeps the query under the
 * complexity limit; at most 50 pages). */
async function allRequests(status = null) {
  const list = [];
  let after = null;
  for (let page = 0; page < 50; page++) {
    const { correctionRequests: p } = await gql(`query($a: String, $s: CorrectionRequestStatus) {
      correctionRequests(status: $s, first: 50, after: $a) {
      requests { ${REQUEST_FIELDS} } endCursor hasNextPage } }`, { a: after, s: status });
    list.push(...p.requests);
    if (!p.hasNextPage || !p.endCursor) break;
    after = p.endCursor;
  }
  return list;
}

// --- the citizen ---------------------------------------------------------------------------------

export function myRequestsView(main) {
  load(main, async () => {
    const requests = (await allRequests()).reverse();
    const out = h("div", { id: "my-requests-out" });
    const rows = requests.map((r) => [
      fieldName(r.field), r.proposedValue, r.reason, status(r.status), date(r.submitted), deadlines(r), outcome(r),
      h("td", {}, isOpen(r)
        ? h("button", { type: "button", class: "secondary", "data-request": r.id, onclick: async () => {
          out.replaceChildren();
          try {
            await gql("mutation($r: String!) { withdrawCorrectionRequest(request: $r) { request { status } } }", { r: r.id });
            done();
          } catch (e) {
            showError(main, out, e);
          }
        } }, t("withdrawRequest"))
        : ""),
    ]);
    return [
      h("h1", {}, t("nav_myrequests")),
      section(null, h("p", { class: "muted" }, t("myRequestsHelp")),
        rows.length
          ? table([t("requestField"), t("proposedValue"), t("reason"), t("status"), t("submitted"), t("deadline"), t("outcome"), t("actions")], rows)
          : h("p", {}, t("noRequests")),
        out),
      requestForm(),
    ];
  });
}

function requestForm() {
  const out = h("div");
  const field = h("select", { id: "req-field", "data-path": "input.field" },
    CORRECTABLE.map((f) => h("option", { value: f }, fieldName(f))));
  const value = h("input", { id: "req-value", required: true, maxlength: 1000, "data-path": "input.proposedValue" });
  const reason = h("input", { id: "req-reason", required: true, "data-path": "input.reason" });
  const evidence = h("textarea", { id: "req-evidence", rows: 2, "data-path": "input.evidence" });
  const slot = (control) => h("div", { class: "field", "data-field": control.dataset.path },
    h("label", { for: control.id }, control === field ? t("requestField") : control === value ? t("proposedValue")
      : control === reason ? t("reason") : t("evidence")),
    control, h("div", { class: "field-error" }));
  const form = h("form", { id: "request-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await gql("mutation($i: RequestCorrectionInput!) { requestCorrection(input: $i) { request { id } } }", { i: {
        field: field.value,
        proposedValue: value.value.trim(),
        reason: reason.value.trim(),
        evidence: evidence.value.split("\n").map((x) => x.trim()).filter(Boolean),
      } });
      done();
    } catch (e) {
      showError(form, out, e);
    }
  } },
  h("div", { class: "row" }, slot(field), slot(value)), slot(reason), slot(evidence),
  h("div", {}, h("button", { type: "submit", id: "request-submit" }, t("submit"))), out);
  return section(t("newRequest"), form);
}

// --- stewards and supervisors --------------------------------------------------------------------

/**
 * The names of the citizens `ids` name (each a logged read), 100 to an operation: one operation
 * for them all would pass the server's complexity limit on a long list.
 */
async function names(ids) {
  const unique = [...new Set(ids)];
  const found = new Map();
  for (let start = 0; start < unique.length; start += 100) {
    const chunk = unique.slice(start, start + 100);
    const query = `query(${chunk.map((_, i) => `$c${i}: String!`).join(", ")}) { ${chunk.map((_, i) =>
      `c${i}: citizen(id: $c${i}) { id pin name { full } }`).join(" ")} }`;
    const data = await gql(query, Object.fromEntries(chunk.map((id, i) => [`c${i}`, id])));
    for (const c of Object.values(data)) if (c) found.set(c.id, c);
  }
  return found;
}

export function requestsView(main) {
  load(main, async () => {
    const open = (await Promise.all(OPEN.map((s) => allRequests(s)))).flat()
      .sort((a, b) => nextDeadline(a).localeCompare(nextDeadline(b)) || a.submitted.localeCompare(b.submitted));
    const who = await names(open.map((r) => r.citizen));
    const rows = open.map((r) => {
      const c = who.get(r.citizen);
      return [
        h("span", {}, date(nextDeadline(r)), overdue(r) ? [" ", h("span", { class: "badge overdue" }, t("overdue"))] : null),
        recordLink(r.citizen, c ? `${c.name.full} (${c.pin})` : r.citizen),
        fieldName(r.field), r.proposedValue, status(r.status), date(r.submitted),
        h("a", { href: `#/request/${encodeURIComponent(r.id)}`, class: "handle" }, t("handle")),
      ];
    });
    return [
      h("h1", {}, t("nav_requests")),
      section(null, h("p", { class: "muted" }, t("requestsHelp")),
        rows.length
          ? table([t("nextDeadline"), t("citizen"), t("requestField"), t("proposedValue"), t("status"), t("submitted"), t("actions")], rows)
          : h("p", {}, t("noRequests"))),
    ];
  });
}

/** One action's small form: its inputs, a submit button, its errors under it. */
function actionForm(id, title, inputs, run) {
  const out = h("div");
  const form = h("form", { id, onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await run();
      done();
    } catch (e) {
      showError(form, out, e);
    }
  } }, inputs.length ? h("div", { class: "row" }, inputs.map(([text, control]) =>
    h("div", { class: "field", "data-field": control.dataset.path ?? control.id },
      h("label", { for: control.id }, text), control, h("div", { class: "field-error" })))) : null,
  h("div", {}, h("button", { type: "submit", id: `${id}-submit` }, title)), out);
  return section(title, form);
}

const RESOLVE = "mutation($r: String!, $c: String!) { resolveCorrectionRequest(request: $r, correction: $c) { request { status } } }";

export function requestView(main, id) {
  load(main, async () => {
    const { correctionRequest: r } = await gql(`query($id: String!) { correctionRequest(id: $id) { ${REQUEST_FIELDS}
      history { streamVersion eventType recordedAt actor } } }`, { id });
    const { citizen: c } = await gql(`query($id: String!) { citizen(id: $id) { id pin name { full }
      corrections { id changes status } } }`, { id: r.citizen });
    const parts = [
      h("h1", {}, t("request"), " ", h("span", { class: "badge" }, status(r.status))),
      section(null, dl([
        [t("id"), h("span", { class: "hash" }, r.id)],
        [t("citizen"), c ? recordLink(c.id, `${c.name.full} (${c.pin})`) : r.citizen],
        [t("requestField"), fieldName(r.field)],
        [t("proposedValue"), r.proposedValue],
        [t("reason"), r.reason],
        [t("evidenceList"), r.evidence.join("; ")],
        [t("submitted"), date(r.submitted)],
        [t("deadline"), deadlines(r)],
        [t("acknowledgedBy"), r.acknowledgedBy ?? ""],
        [t("outcome"), outcome(r)],
      ])),
    ];
    if (isOpen(r)) {
      if (r.status === "SUBMITTED") {
        parts.push(actionForm("ack-form", t("acknowledge"), [], () =>
          gql("mutation($r: String!) { acknowledgeCorrectionRequest(request: $r) { request { status } } }", { r: r.id })));
      }
      if (!r.extension) {
        const days = h("input", { id: "ext-days", required: true, inputmode: "numeric", pattern: "\\d{1,3}", "data-path": "days" });
        const why = h("input", { id: "ext-reason", required: true, "data-path": "reason" });
        parts.push(actionForm("extend-form", t("extend"), [[t("extendDays"), days], [t("reason"), why]], () =>
          gql("mutation($r: String!, $d: Int!, $w: String!) { extendCorrectionRequest(request: $r, days: $d, reason: $w) { request { status } } }",
            { r: r.id, d: Number(days.value), w: why.value.trim() })));
      }
      const corrections = (c?.corrections ?? []).filter((x) => x.status !== "REJECTED" && x.status !== "WITHDRAWN");
      const pick = h("select", { id: "resolve-correction", required: true, "data-path": "correction" },
        h("option", { value: "" }, "—"),
        corrections.map((x) => h("option", { value: x.id },
          `${(Array.isArray(x.changes) ? x.changes : []).map((ch) => `${ch.field}: ${JSON.stringify(ch.old)} → ${JSON.stringify(ch.new)}`).join("; ")} — ${status(x.status)}`)));
      const resolve = actionForm("resolve-form", t("resolve"), [[t("correction"), pick]], () =>
        gql(RESOLVE, { r: r.id, c: pick.value }));
      resolve.querySelector("form").prepend(h("p", { class: "muted" }, t("resolveHelp"), " ", recordLink(r.citizen, c ? c.name.full : r.citizen)));
      parts.push(resolve);
      const why = h("input", { id: "refuse-reason", required: true, "data-path": "reason" });
      const basis = h("input", { id: "refuse-basis", required: true, "data-path": "legalBasis" });
      parts.push(actionForm("refuse-form", t("refuse"), [[t("reason"), why], [t("legalBasis"), basis]], () =>
        gql("mutation($r: String!, $w: String!, $b: String!) { refuseCorrectionRequest(request: $r, reason: $w, legalBasis: $b) { request { status } } }",
          { r: r.id, w: why.value.trim(), b: basis.value.trim() })));
    }
    parts.push(section(t("history"), table([t("version"), t("eventType"), t("recordedAt"), t("actor")],
      r.history.map((e) => [String(e.streamVersion), e.eventType, instant(e.recordedAt), e.actor ?? ""]))));
    return parts;
  });
}
