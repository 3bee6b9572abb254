// The console's pages. Every page is built with `h` (text always as text nodes: nothing the
// server returns is parsed as HTML) and asks the server only what its role may read.

import { ApiError, gql } from "./api.js";
import { date, instant, number, parseDate, t } from "./i18n.js";
import { commandsPart } from "./forms.js";

/** An element: attributes (`on…` are listeners), then children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An error with its code and the reason in words. */
export function errorBox(e) {
  const code = e instanceof ApiError ? e.code : "INTERNAL";
  return h(
    "div",
    { class: "error", role: "alert", "data-code": code },
    h("code", {}, code),
    e.reason ? [" ", h("code", { class: "reason" }, e.reason)] : null,
    " — ",
    t(`err_${code}`),
    e.message ? h("div", { class: "muted" }, e.message) : null,
  );
}

export const section = (title, ...children) => h("section", {}, title ? h("h2", {}, title) : null, ...children);
export const dl = (pairs) =>
  h("dl", {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
export const table = (headers, rows) =>
  h("div", { class: "table" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))))))));
export const recordLink = (id, text) => h("a", { href: `#/record/${encodeURIComponent(id)}` }, text || id);
export const status = (value) => t(`st_${value}`);
const uuidOf = (id) => String(id).replace(/^(citizen|business|parcel)-/, "");

/** A write's confirmation, shown above the page as it reads after the write. */
let flash = null;

/** After a write: the page is read again (the record as now projected) under "recorded". */
export function done() {
  flash = t("done");
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/** After a write that made a new record: its page, under "recorded". */
export function doneAt(hash) {
  if (location.hash === hash) return done();
  flash = t("done");
  location.hash = hash;
}

/** The latest load started into each element. */
const loads = new WeakMap();

/** Runs `work` into `main`, showing "loading" and, on failure, the error. */
export async function load(main, work) {
  main.replaceChildren(h("p", { class: "muted" }, t("loading")));
  if (main.id === "view") window.scrollTo(0, 0);
  // A page left before its answers came must not draw over the page opened since.
  const mine = (loads.get(main) ?? 0) + 1;
  loads.set(main, mine);
  const current = () => loads.get(main) === mine && (main.id !== "view" || location.hash === hash);
  const hash = location.hash;
  try {
    const content = await work();
    if (!current()) return;
    main.replaceChildren(...[content].flat());
    if (flash && main.id === "view") {
      main.prepend(h("p", { class: "ok", role: "status", id: "flash" }, flash));
      flash = null;
    }
  } catch (e) {
    if (!current()) return;
    main.replaceChildren(errorBox(e));
  }
  // Screen readers start at the new content; the view is not scrolled away.
  main.focus({ preventScroll: true });
}

// --- log in ------------------------------------------------------------------------------------

export function loginView(main, onLogin) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const out = h("div");
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      out.replaceChildren();
      try {
        await onLogin(input.value.trim());
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    },
  },
  h("label", { for: "token" }, t("token"), input),
  h("p", { id: "token-help", class: "muted" }, t("tokenHelp")),
  h("div", {}, h("button", { type: "submit", id: "login" }, t("login"))));
  main.replaceChildren(h("h1", {}, t("login")), section(null, form, out));
  input.focus();
}

// --- search ------------------------------------------------------------------------------------

const CITIZEN_FIELDS = "id pin name { full } birthDate status";

export function searchView(main, params) {
  const kind = ["citizens", "businesses", "parcels"].includes(params.get("kind")) ? params.get("kind") : "citizens";
  const q = params.get("q") ?? "";
  const input = h("input", { id: "q", type: "search", value: q, "aria-describedby": "q-help" });
  const results = h("div", { id: "results" });
  const go = (k, text) => { location.hash = `#/search?kind=${k}&q=${encodeURIComponent(text)}`; };
  const tabs = h("div", { class: "tabs", role: "group" }, ["citizens", "businesses", "parcels"].map((k) =>
    h("button", { type: "button", class: "secondary", "aria-pressed": String(k === kind), onclick: () => go(k, input.value) }, t(`kind_${k}`))));
  const form = h("form", { role: "search", onsubmit: (ev) => { ev.preventDefault(); go(kind, input.value); } },
    h("div", { class: "row" },
      h("label", { for: "q" }, t(`kind_${kind}`), input),
      h("button", { type: "submit", id: "search" }, t("search"))),
    h("p", { id: "q-help", class: "muted" }, t(`searchHelp_${kind}`)));
  main.replaceChildren(h("h1", {}, t("nav_search")), section(null, tabs, form), results);
  input.focus();
  if (q.trim()) load(results, () => searchResults(kind, q.trim()));
}

async function searchResults(kind, q) {
  let rows = [];
  let headers = [];
  if (kind === "citizens") {
    headers = [t("name"), t("pin"), t("birthDate"), t("status")];
    const list = /^\d{12}$/.test(q)
      ? [(await gql(`query($p: String!) { citizen(pin: $p) { ${CITIZEN_FIELDS} } }`, { p: q })).citizen].filter(Boolean)
      : (await gql(`query($s: String!) { citizens(search: $s, first: 20) { edges { node { ${CITIZEN_FIELDS} } } } }`, { s: q }))
        .citizens.edges.map((e) => e.node);
    rows = list.map((c) => [recordLink(c.id, c.name.full), c.pin, date(c.birthDate), status(c.status)]);
  } else if (kind === "businesses") {
    headers = [t("name"), t("code"), t("status")];
    const fields = "id code name status";
    const list = /^\d{10}(-\d{3})?$/.test(q)
      ? [(await gql(`query($c: String!) { business(code: $c) { ${fields} } }`, { c: q })).business].filter(Boolean)
      : (await gql(`query($s: String!) { businesses(search: $s, first: 20) { edges { node { ${fields} } } } }`, { s: q }))
        .businesses.edges.map((e) => e.node);
    rows = list.map((b) => [recordLink(b.id, b.name), b.code, status(b.status)]);
  } else {
    headers = [t("key"), t("commune"), t("area"), t("status")];
    const fields = "id key commune { name } area status";
    const list = /^\d{5}$/.test(q)
      ? (await gql(`query($c: String!) { parcels(commune: $c, first: 20) { edges { node { ${fields} } } } }`, { c: q }))
        .parcels.edges.map((e) => e.node)
      : [(await gql(`query($k: String!) { parcel(key: $k) { ${fields} } }`, { k: q })).parcel].filter(Boolean);
    rows = list.map((p) => [recordLink(p.id, p.key), p.commune.name ?? "", `${number(p.area)} m²`, status(p.status)]);
  }
  if (!rows.length) return h("p", {}, t("noResults"));
  return section(null, table(headers, rows));
}

// --- a record ----------------------------------------------------------------------------------

const HISTORY = `query($r: String!) { history(record: $r, first: 100) {
  position streamVersion eventType recordedAt actor reason legalBasis hash redacted valid { from basis } } }`;

const CORRECTIONS = "corrections { id changes reason legalBasisDocument legalBasisDate proposedBy status reviewedBy }";

export function recordView(main, id, me) {
  const kind = String(id).split("-")[0];
  load(main, async () => {
    const parts = [];
    if (kind === "citizen") parts.push(...(await citizenParts(id, me)));
    else if (kind === "business") parts.push(...(await businessParts(id, me)));
    else if (kind === "parcel") parts.push(...(await parcelParts(id, me)));
    else throw new ApiError("INVALID_INPUT", id);
    if (me.role !== "service") parts.push(await historyPart(id, me));
    return parts;
  });
}

const residence = (r) => (r ? `${r.address}, ${r.commune.name ?? r.commune.code} (${t("since")} ${date(r.since)})` : "");
const relative = (c) => (c ? (c.id ? recordLink(c.id, c.name.full) : c.name.full) : "");

async function citizenParts(id, me) {
  const citizenOnly = me.role === "citizen";
  // A citizen sees only the name of the people their record names.
  const rel = citizenOnly ? "name { full }" : "id name { full }";
  const q = `query($id: String!) { citizen(id: $id) {
    id version restricted pin name { family middle given full } sex birthDate birthPlace { code name } status deathDate
    identityCard { number issueDate place }
    permanentResidence { commune { code name } address since } temporaryResidence { commune { code name } address since }
    father { ${rel} } mother { ${rel} } spouse { ${rel} } children { ${rel} } marriedSince
    parcels { id key area } represents { id code name } ${citizenOnly ? "" : CORRECTIONS} } }`;
  const c = (await gql(q, { id })).citizen;
  if (!c) throw new ApiError("NOT_FOUND", id);
  const parts = [
    h("h1", {}, c.name.full, " ", h("span", { class: "badge" }, `${t("version")} ${c.version}`),
      c.restricted ? [" ", h("span", { class: "badge" }, t("restricted"))] : null),
    section(null, dl([
      [t("id"), h("span", { class: "hash" }, c.id)],
      [t("pin"), c.pin],
      [t("sex"), t(`sex_${c.sex}`)],
      [t("birthDate"), date(c.birthDate)],
      [t("birthPlace"), c.birthPlace.name ?? c.birthPlace.code],
      [t("status"), status(c.status)],
      [t("deathDate"), date(c.deathDate)],
      [t("identityCard"), c.identityCard ? `${c.identityCard.number} (${date(c.identityCard.issueDate)}, ${c.identityCard.place})` : ""],
      [t("permanentResidence"), residence(c.permanentResidence)],
      [t("temporaryResidence"), residence(c.temporaryResidence)],
      [t("father"), relative(c.father)],
      [t("mother"), relative(c.mother)],
      [t("spouse"), relative(c.spouse)],
      [t("marriedSince"), date(c.marriedSince)],
      [t("children"), c.children.length ? h("span", { id: "children" }, c.children.map((x, i) => [i ? ", " : "", relative(x)])) : ""],
      [t("parcels"), c.parcels.length ? h("span", {}, c.parcels.map((p, i) => [i ? ", " : "", recordLink(p.id, `${p.key} (${number(p.area)} m²)`)])) : ""],
      [t("represents"), c.represents.length ? h("span", {}, c.represents.map((b, i) => [i ? ", " : "", recordLink(b.id, b.name)])) : ""],
    ])),
  ];
  if (c.corrections) parts.push(correctionsPart(c, me));
  if (me.role === "steward" || me.role === "supervisor") {
    parts.push(correctionForm(c), commandsPart("citizen", c, () => ({ "input.citizen": ownId(c.id), "input.survivor": ownId(c.id), "input.record": c.id })));
  }
  return parts;
}

/** A record's own id as a command's input names it. */
const ownId = (id) => uuidOf(id);

const staff = (me) => me.role === "steward" || me.role === "supervisor";

async function businessParts(id, me) {
  const q = `query($id: String!) { business(id: $id) { id version code name englishName status registrationDate
    headOffice { commune { code name } street } charterCapital businessLines
    legalRepresentatives { id name { full } } parcels { id key } ${CORRECTIONS} } }`;
  const b = (await gql(q, { id })).business;
  if (!b) throw new ApiError("NOT_FOUND", id);
  return [
    h("h1", {}, b.name, " ", h("span", { class: "badge" }, `${t("version")} ${b.version}`)),
    section(null, dl([
      [t("id"), h("span", { class: "hash" }, b.id)],
      [t("code"), b.code],
      [t("status"), status(b.status)],
      [t("registrationDate"), date(b.registrationDate)],
      [t("headOffice"), `${b.headOffice.street}, ${b.headOffice.commune.name ?? b.headOffice.commune.code}`],
      [t("charterCapital"), b.charterCapital ? `${number(b.charterCapital)} đ` : ""],
      [t("businessLines"), b.businessLines.join(", ")],
      [t("legalRepresentatives"), h("span", {}, b.legalRepresentatives.map((c, i) => [i ? ", " : "", recordLink(c.id, c.name.full)]))],
      [t("parcels"), h("span", {}, b.parcels.map((p, i) => [i ? ", " : "", recordLink(p.id, p.key)]))],
    ])),
    staff(me) ? commandsPart("business", b, (m) => ({
      "input.business": ownId(b.id),
      "input.parent": ownId(b.id),
      "input.record": b.id,
      ...(m === "changeLegalRepresentatives" ? { "input.legalRepresentatives": b.legalRepresentatives.map((c) => ownId(c.id)) } : {}),
    })) : null,
  ].filter(Boolean);
}

async function parcelParts(id, me) {
  const q = `query($id: String!) { parcel(id: $id) { id version key commune { code name } area landUse address status
    holders { shareNumerator shareDenominator holder { __typename ... on Citizen { id name { full } } ... on Business { id name } } }
    certificate { serial issueDate } mortgages { contractNumber amount registeredOn creditor { id name } } ${CORRECTIONS} } }`;
  const p = (await gql(q, { id })).parcel;
  if (!p) throw new ApiError("NOT_FOUND", id);
  const holder = (x) => (x.holder ? recordLink(x.holder.id, x.holder.name.full ?? x.holder.name) : "");
  return [
    h("h1", {}, p.key, " ", h("span", { class: "badge" }, `${t("version")} ${p.version}`)),
    section(null, dl([
      [t("id"), h("span", { class: "hash" }, p.id)],
      [t("commune"), p.commune.name ?? p.commune.code],
      [t("area"), `${number(p.area)} m²`],
      [t("landUse"), p.landUse.join(", ")],
      [t("address"), p.address],
      [t("status"), status(p.status)],
      [t("certificate"), p.certificate ? `${p.certificate.serial} (${date(p.certificate.issueDate)})` : ""],
    ])),
    section(t("holders"), table([t("name"), t("share")], p.holders.map((x) => [holder(x), `${x.shareNumerator}/${x.shareDenominator}`]))),
    p.mortgages.length
      ? section(t("mortgages"), table([t("f_contractNumber"), t("f_amount"), t("f_registeredOn")],
        p.mortgages.map((m) => [m.contractNumber, `${number(m.amount)} đ`, date(m.registeredOn)])))
      : null,
    staff(me) ? commandsPart("parcel", p, () => ({ "input.parcel": ownId(p.id), "input.source": ownId(p.id), "input.sources": [ownId(p.id)], "input.record": p.id })) : null,
  ].filter(Boolean);
}

/** From when an event's fact holds (valid time): its date, or what kind of change it is. */
const validText = (v) => {
  if (!v) return "";
  if (v.from) return h("span", { title: t(`valid_${v.basis}`) }, date(v.from));
  return v.basis === "NOT_A_FACT" ? "" : t(`valid_${v.basis}`);
};

async function historyPart(id, me) {
  const events = (await gql(HISTORY, { r: id })).history;
  const auditor = me.role === "auditor";
  // Staff and auditors see each event's log position: a redaction names its event by it.
  const positions = me.role !== "citizen";
  const headers = [t("version"), ...(positions ? [t("position")] : []), t("eventType"), t("validFrom"), t("recordedAt"), t("actor"), t("reason"), t("legalBasis")];
  if (auditor) headers.push(t("hash"), t("proof"));
  return section(t("history"), table(headers, events.map((e) => {
    const type = e.redacted ? [e.eventType, " ", h("span", { class: "badge" }, t("redacted"))] : e.eventType;
    const row = [String(e.streamVersion), ...(positions ? [String(e.position)] : []), h("td", {}, type), validText(e.valid), instant(e.recordedAt), e.actor ?? "", e.reason ?? "", e.legalBasis ?? ""];
    if (auditor) {
      const cell = h("td", {});
      cell.append(h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          const p = (await gql("query($p: Int!) { inclusionProof(position: $p) { entry treeSize } }", { p: e.position })).inclusionProof;
          cell.replaceChildren(p.entry === e.hash ? t("proofOk", { size: number(p.treeSize) }) : t("err_TREE_INCONSISTENT"));
        } catch (err) {
          cell.replaceChildren(errorBox(err));
        }
      } }, t("proof")));
      row.push(h("td", { class: "hash" }, e.hash), cell);
    }
    return row;
  })));
}

// --- corrections: proposals, four eyes ---------------------------------------------------------

const changeText = (changes) => h("span", {}, (Array.isArray(changes) ? changes : []).map((c, i) => [
  i ? "; " : "", `${c.field}: `, h("span", { class: "old" }, JSON.stringify(c.old)), " → ", h("span", { class: "new" }, JSON.stringify(c.new)),
]));

function correctionsPart(record, me) {
  const out = h("div");
  const rows = record.corrections.map((c) => {
    const actions = h("td", {});
    if (c.status === "PENDING" && me.role === "supervisor") {
      actions.append(
        h("button", { type: "button", onclick: () => review(record.id, c.id, "approve", null, out) }, t("approve")), " ",
        h("button", { type: "button", class: "secondary", onclick: () => {
          const why = prompt(t("reason"));
          if (why) review(record.id, c.id, "reject", why, out);
        } }, t("reject")));
    }
    return [changeText(c.changes), c.reason, `${c.legalBasisDocument} (${date(c.legalBasisDate)})`, c.proposedBy, status(c.status), c.reviewedBy ?? "", actions];
  });
  return section(t("corrections"),
    rows.length ? table([t("changes"), t("reason"), t("legalBasis"), t("proposedBy"), t("status"), t("reviewedBy"), t("actions")], rows) : h("p", { class: "muted" }, "—"),
    me.role === "supervisor" ? h("p", { class: "muted" }, t("fourEyes")) : null,
    out);
}

async function review(record, correction, verb, reason, out) {
  out.replaceChildren();
  const input = { record, correction, ...(reason ? { reason } : {}) };
  try {
    if (verb === "approve") {
      await gql("mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { commandId } }", { i: input });
    } else {
      await gql("mutation($i: RejectCorrectionInput!) { rejectCorrection(input: $i) { commandId } }", { i: input });
    }
    done();
  } catch (e) {
    out.replaceChildren(errorBox(e));
  }
}

/** The protected fields a steward proposes to correct, with the value as the record holds it. */
const CORRECTABLE = [
  ["name.family", (c) => c.name.family],
  ["name.middle", (c) => c.name.middle],
  ["name.given", (c) => c.name.given],
  ["birth_date", (c) => c.birthDate],
  ["sex", (c) => c.sex.toLowerCase()],
  ["pin", (c) => c.pin],
];

function correctionForm(c) {
  const out = h("div");
  const field = h("select", { id: "cor-field" }, CORRECTABLE.map(([f]) => h("option", { value: f }, f)));
  const old = h("input", { id: "cor-old", readonly: true });
  const fresh = h("input", { id: "cor-new", required: true });
  const reason = h("input", { id: "cor-reason", required: true });
  const doc = h("input", { id: "cor-doc", required: true });
  const docDate = h("input", { id: "cor-date", required: true, placeholder: "dd/mm/yyyy" });
  const current = () => CORRECTABLE.find(([f]) => f === field.value)[1](c);
  const showOld = () => {
    const v = current();
    old.value = field.value === "birth_date" ? date(v) : v;
  };
  field.addEventListener("change", showOld);
  showOld();
  const form = h("form", { id: "correction-form", onsubmit: async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    const day = parseDate(docDate.value);
    let value = fresh.value.trim();
    if (field.value === "birth_date") value = parseDate(value) ?? value;
    if (!day) {
      out.replaceChildren(errorBox(new ApiError("INVALID_INPUT", `${t("documentDate")}: ${docDate.value}`)));
      return;
    }
    try {
      await gql("mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { commandId } }", { i: {
        record: c.id,
        correction: crypto.randomUUID(),
        changes: [{ field: field.value, old: current(), new: value }],
        reason: reason.value.trim(),
        legalBasis: { documentNumber: doc.value.trim(), documentDate: day },
      } });
      done();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  } },
  h("div", { class: "row" },
    h("label", { for: "cor-field" }, t("field"), field),
    h("label", { for: "cor-old" }, t("oldValue"), old),
    h("label", { for: "cor-new" }, t("newValue"), fresh)),
  h("label", { for: "cor-reason" }, t("reason"), reason),
  h("div", { class: "row" },
    h("label", { for: "cor-doc" }, t("documentNumber"), doc),
    h("label", { for: "cor-date" }, t("documentDate"), docDate)),
  h("p", { class: "muted" }, t("fourEyes")),
  h("div", {}, h("button", { type: "submit", id: "propose" }, t("submit"))), out);
  return section(t("proposeCorrection"), form);
}

// --- the supervisor's queue --------------------------------------------------------------------

export function queueView(main, me) {
  load(main, async () => {
    const { openCorrections } = await gql(`{ openCorrections(first: 100) {
      record proposedAt correction { id changes reason legalBasisDocument legalBasisDate proposedBy status } } }`);
    const out = h("div");
    const rows = openCorrections.map((o) => {
      const actions = h("td", {});
      if (me.role === "supervisor") {
        actions.append(
          h("button", { type: "button", onclick: () => review(o.record, o.correction.id, "approve", null, out) }, t("approve")), " ",
          h("button", { type: "button", class: "secondary", onclick: () => {
            const why = prompt(t("reason"));
            if (why) review(o.record, o.correction.id, "reject", why, out);
          } }, t("reject")));
      }
      return [recordLink(o.record), changeText(o.correction.changes), o.correction.reason,
        `${o.correction.legalBasisDocument} (${date(o.correction.legalBasisDate)})`, o.correction.proposedBy, instant(o.proposedAt), actions];
    });
    return [
      h("h1", {}, t("nav_queue")),
      section(null, h("p", { class: "muted" }, t("queueHelp"), " ", t("fourEyes")),
        rows.length ? table([t("record"), t("changes"), t("reason"), t("legalBasis"), t("proposedBy"), t("recordedAt"), t("actions")], rows)
          : h("p", {}, t("noPending")), out),
      await redactionQueue(me),
    ];
  });
}

/** Redactions waiting for a supervisor other than their proposer (court or legal orders). */
async function redactionQueue(me) {
  const { openRedactions } = await gql(`{ openRedactions(first: 100) { record proposedAt
    redaction { position eventType reason legalBasisDocument legalBasisDate proposedBy } } }`);
  const out = h("div");
  const decide = async (o, verb, reason) => {
    out.replaceChildren();
    const input = { record: o.record, position: o.redaction.position, ...(reason ? { reason } : {}) };
    try {
      if (verb === "approve") {
        await gql("mutation($i: ApproveRedactionInput!) { approveRedaction(input: $i) { commandId } }", { i: input });
      } else {
        await gql("mutation($i: RejectRedactionInput!) { rejectRedaction(input: $i) { commandId } }", { i: input });
      }
      done();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const rows = openRedactions.map((o) => {
    const r = o.redaction;
    const actions = h("td", {});
    if (me.role === "supervisor") {
      actions.append(
        h("button", { type: "button", class: "approve-redaction", onclick: () => decide(o, "approve") }, t("approve")), " ",
        h("button", { type: "button", class: "secondary", onclick: () => {
          const why = prompt(t("reason"));
          if (why) decide(o, "reject", why);
        } }, t("reject")));
    }
    return [recordLink(o.record), `${r.eventType} @ ${r.position}`, r.reason,
      `${r.legalBasisDocument} (${date(r.legalBasisDate)})`, r.proposedBy, instant(o.proposedAt), actions];
  });
  return h("section", { id: "redaction-queue" }, h("h2", {}, t("redactionQueue")),
    h("p", { class: "muted" }, t("redactionHelp")),
    rows.length ? table([t("record"), t("event"), t("reason"), t("legalBasis"), t("proposedBy"), t("recordedAt"), t("actions")], rows)
      : h("p", {}, t("noPending")), out);
}

// --- the auditor -------------------------------------------------------------------------------

function verification(v) {
  return h("div", { class: v.intact ? "ok" : "error", role: "status" },
    h("strong", {}, v.intact ? t("intact") : t("broken")), " — ",
    `${t("events")}: ${number(v.events)}`,
    v.head ? [" — ", `${t("head")}: ${v.head.position} `, h("span", { class: "hash" }, v.head.hash)] : null,
    v.breach ? [" — ", `${t("breach")}: ${v.breach} @ ${v.firstBadPosition}`] : null);
}

export function accessLogTable(entries) {
  return table([t("recordedAt"), t("principal"), t("endUser"), t("case"), t("purpose"), t("fieldGroups")],
    entries.map((e) => [instant(e.recordedAt), e.principal, e.endUser ?? "", e.case ?? "", e.purpose ?? "", e.fieldGroups.join(", ")]));
}

const ACCESS_LOG = "query($c: String!) { accessLog(citizen: $c, first: 100) { recordedAt principal endUser case purpose fieldGroups } }";

export function auditView(main) {
  const logOut = h("div", { id: "verify-log-out" });
  const accessOut = h("div", { id: "verify-access-out" });
  const run = (out, query, pick) => async () => {
    out.replaceChildren(h("p", { class: "muted" }, t("loading")));
    try {
      out.replaceChildren(verification(pick(await gql(query))));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const citizen = h("input", { id: "audit-citizen", placeholder: "citizen-…" });
  const accessList = h("div", { id: "access-list" });
  const feed = h("div", { id: "feed" });
  main.replaceChildren(
    h("h1", {}, t("nav_audit")),
    section(t("verifyLog"), h("button", { type: "button", id: "verify-log", onclick: run(logOut,
      "{ verifyLog { intact events head { position hash } firstBadPosition breach } }", (d) => d.verifyLog) }, t("verify")), logOut),
    section(t("verifyAccessLog"), h("button", { type: "button", id: "verify-access", onclick: run(accessOut,
      "{ verifyAccessLog { intact events head { position hash } firstBadPosition breach } }", (d) => d.verifyAccessLog) }, t("verify")), accessOut),
    section(t("accessLogOf"), h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      load(accessList, async () => accessLogTable((await gql(ACCESS_LOG, { c: citizen.value.trim() })).accessLog));
    } }, h("div", { class: "row" }, h("label", { for: "audit-citizen" }, t("record"), citizen), h("button", { type: "submit" }, t("show")))), accessList),
    section(t("changeFeed"), feed),
  );
  main.focus({ preventScroll: true });
  load(feed, async () => {
    const { changes } = await gql("{ changes(first: 50) { changes { position streamId eventType recordedAt } } }");
    return table([t("position"), t("stream"), t("eventType"), t("recordedAt")],
      changes.changes.map((c) => [String(c.position), recordLink(c.streamId), c.eventType, instant(c.recordedAt)]));
  });
}

// --- the citizen -------------------------------------------------------------------------------

export function mineView(main, me) {
  // A citizen principal's id is their record id, `citizen-<uuid>`.
  const own = String(me.id);
  load(main, async () => {
    const parts = await citizenParts(own, me);
    parts.push(await historyPart(own, me));
    const { accessLog } = await gql(ACCESS_LOG, { c: own });
    parts.push(section(t("whoReadMe"), accessLogTable(accessLog)));
    return parts;
  });
}
