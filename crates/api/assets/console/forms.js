// Command forms built from the schema: a mutation's arguments and its `<Command>Input` type are
// read by introspection and rendered as controls, so a field the server adds appears here with
// no change to the console. Every control carries its input path (`input.name.family`,
// `input.holders.0.share`, `reason`) in `data-path`: a refusal naming that path in
// `extensions.field` is shown next to the control; any other error in the error box.

import { ApiError, gql } from "./api.js";
import { date, parsePartialDate, t } from "./i18n.js";
import { done, doneAt, errorBox, h } from "./views.js";

const TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
const TYPE_QUERY = `query($n: String!) { __type(name: $n) { kind name
  inputFields { name description defaultValue type { ${TYPE_REF} } } enumValues { name description } } }`;
const MUTATION_ARGS = `{ __schema { mutationType { fields { name args { name description type { ${TYPE_REF} } } } } } }`;

/** Introspection answers, kept for the page's life: the schema does not change under it. */
const types = new Map();
let mutationArgs = null;

function describe(name) {
  if (!types.has(name)) {
    types.set(name, gql(TYPE_QUERY, { n: name }).then((d) => d.__type).catch((e) => {
      types.delete(name);
      throw e;
    }));
  }
  return types.get(name);
}

async function argsOf(mutation) {
  if (!mutationArgs) {
    mutationArgs = gql(MUTATION_ARGS).then((d) => new Map(d.__schema.mutationType.fields.map((f) => [f.name, f.args])))
      .catch((e) => {
        mutationArgs = null;
        throw e;
      });
  }
  const args = (await mutationArgs).get(mutation);
  if (!args) throw new ApiError("NOT_FOUND", mutation);
  return args;
}

/** A type reference as `{required, list}` or `{required, kind, name}`. */
function shape(ref) {
  if (ref.kind === "NON_NULL") return { ...shape(ref.ofType), required: true };
  if (ref.kind === "LIST") return { required: false, list: shape(ref.ofType) };
  return { required: false, kind: ref.kind, name: ref.name };
}

/** A type reference as GraphQL writes it, for the operation's variable declarations. */
function typeText(ref) {
  if (ref.kind === "NON_NULL") return `${typeText(ref.ofType)}!`;
  if (ref.kind === "LIST") return `[${typeText(ref.ofType)}]`;
  return ref.name;
}

/** Loads every input object and enum reachable from `ref` into `found` (name → __type). */
async function collect(ref, found) {
  const s = shape(ref);
  const named = s.list ? innermost(s.list) : s;
  if (!["INPUT_OBJECT", "ENUM"].includes(named.kind) || found.has(named.name)) return;
  const type = await describe(named.name);
  found.set(named.name, type);
  for (const f of type.inputFields ?? []) await collect(f.type, found);
}

const innermost = (s) => (s.list ? innermost(s.list) : s);

/** A field's shape as the form asks it: one with a default may be left empty (the server fills it). */
const fieldShape = (f) => (f.defaultValue != null ? { ...shape(f.type), required: false } : shape(f.type));

/** A field's label: the console's words for it, else its name spelled out. */
function label(name) {
  const key = `f_${name}`;
  const text = t(key);
  return text === key ? name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase() : text;
}

const domId = (form, path) => `${form}-${path.replace(/[^\w]/g, "-")}`;

/** `dd/mm/yyyy` of a default value shown to the user (dates are sent as `yyyy-mm-dd`). */
const PARTIAL_DATE = "(\\d{1,2}/)?(\\d{1,2}/)?\\d{4}|\\d{4}(-\\d{2}(-\\d{2})?)?";

/**
 * One control for `path`: `{el, read}`, where `read()` is the value to send or undefined
 * (nothing entered: the field is left out). `ctx` holds the form's id, the loaded types and the
 * pre-filled values by path.
 */
function control(ctx, path, name, s, description, caption = label(name)) {
  if (s.list) return listControl(ctx, path, name, s, description);
  const type = ctx.types.get(s.name);
  if (s.kind === "INPUT_OBJECT" && type) return objectControl(ctx, path, s, type, caption);
  const id = domId(ctx.form, path);
  const given = ctx.prefill[path];
  let input;
  let read;
  let echo = null;
  if (s.kind === "ENUM" && type) {
    input = h("select", { id },
      s.required ? null : h("option", { value: "" }, "—"),
      type.enumValues.map((v) => {
        const key = `enum_${v.name}`;
        const text = t(key) === key ? (v.description || v.name) : t(key);
        return h("option", { value: v.name, selected: given === v.name }, text);
      }));
    read = () => input.value || undefined;
  } else if (s.name === "Boolean") {
    input = h("input", { id, type: "checkbox", checked: given === true, class: "check" });
    read = () => input.checked;
  } else if (s.name === "Date") {
    input = h("input", { id, type: "date", value: given ?? "" });
    read = () => input.value || undefined;
    // The browser draws the date in its own locale: the chosen day is repeated as dd/mm/yyyy.
    echo = h("output", { for: id, class: "muted date-echo" }, date(input.value));
    const show = () => echo.replaceChildren(date(input.value));
    input.addEventListener("input", show);
    input.addEventListener("change", show);
  } else if (s.name === "PartialDate") {
    input = h("input", { id, pattern: PARTIAL_DATE, placeholder: t("partialDateHint"), value: given ? date(given) : "" });
    // What the user typed, as the API writes it; sent as typed when it is no date at all, so
    // the server's refusal names the field.
    read = () => (input.value.trim() ? parsePartialDate(input.value) ?? input.value.trim() : undefined);
  } else if (s.name === "Vnd") {
    // Whole đồng, typed with or without Vietnamese thousands dots (`1.500.000.000`).
    input = h("input", { id, inputmode: "numeric", pattern: "\\d{1,3}(\\.?\\d{3})*", value: given ?? "" });
    read = () => (input.value.trim() ? Number(input.value.trim().replaceAll(".", "")) : undefined);
  } else if (s.name === "Int" || s.name === "Float") {
    input = h("input", { id, inputmode: "numeric", pattern: s.name === "Int" ? "-?\\d+" : "-?\\d+([.,]\\d+)?", value: given ?? "" });
    read = () => (input.value.trim() ? Number(input.value.trim().replace(",", ".")) : undefined);
  } else {
    input = h("input", { id, value: given ?? "" });
    read = () => (input.value.trim() ? input.value.trim() : undefined);
  }
  if (s.required && s.name !== "Boolean") input.required = true;
  input.dataset.path = path;
  input.setAttribute("aria-describedby", `${id}-error`);
  if (description) input.title = description;
  const el = h("div", { class: "field", "data-field": path },
    h("label", { for: id }, caption, s.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    input,
    echo,
    h("div", { class: "field-error", id: `${id}-error` }));
  return { el, read };
}

function objectControl(ctx, path, s, type, caption) {
  const children = type.inputFields.map((f) => ({ name: f.name, ...control(ctx, `${path}.${f.name}`, f.name, fieldShape(f), f.description) }));
  const el = h("fieldset", { class: "group", "data-field": path },
    h("legend", {}, caption, s.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    h("div", { class: "field-error", id: `${domId(ctx.form, path)}-error` }),
    children.map((c) => c.el));
  const read = () => {
    const value = {};
    for (const c of children) {
      const v = c.read();
      if (v !== undefined) value[c.name] = v;
    }
    return Object.keys(value).length || s.required ? value : undefined;
  };
  return { el, read };
}

function listControl(ctx, path, name, s, description) {
  const rows = h("div", { class: "rows" });
  const items = [];
  // A removed row renumbers the ones after it, so paths keep naming what the server counts
  // (and element ids stay unique when a row is added after a removal).
  const renumber = () => items.forEach((item, i) => {
    const next = `${path}.${i}`;
    const rename = (value, from, to, sep) =>
      (value === from || value?.startsWith(from + sep) ? to + value.slice(from.length) : value);
    const [oldId, newId] = [domId(ctx.form, item.path), domId(ctx.form, next)];
    for (const node of [item.row, ...item.row.querySelectorAll("*")]) {
      for (const attr of ["data-path", "data-field"]) {
        if (node.hasAttribute(attr)) node.setAttribute(attr, rename(node.getAttribute(attr), item.path, next, "."));
      }
      for (const attr of ["id", "for", "aria-describedby"]) {
        if (node.hasAttribute(attr)) node.setAttribute(attr, rename(node.getAttribute(attr), oldId, newId, "-"));
      }
    }
    item.path = next;
    const head = item.el.querySelector("legend, label");
    if (head?.firstChild) head.firstChild.textContent = `${label(name)} (${i + 1})`;
  });
  const add = (focus) => {
    const i = items.length;
    const item = { path: `${path}.${i}`, ...control(ctx, `${path}.${i}`, name, s.list, description, `${label(name)} (${i + 1})`) };
    item.row = h("div", { class: "list-row" }, item.el,
      h("button", { type: "button", class: "secondary", onclick: () => {
        items.splice(items.indexOf(item), 1);
        item.row.remove();
        renumber();
      } }, t("removeRow")));
    items.push(item);
    rows.append(item.row);
    if (focus) item.row.querySelector("input, select")?.focus();
  };
  const given = ctx.prefill[path];
  if (Array.isArray(given)) {
    given.forEach((v, i) => { ctx.prefill[`${path}.${i}`] = v; add(false); });
  } else if (s.required) {
    add(false);
  }
  const el = h("fieldset", { class: "group", "data-field": path },
    h("legend", {}, label(name), s.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    h("div", { class: "field-error", id: `${domId(ctx.form, path)}-error` }),
    rows,
    h("div", {}, h("button", { type: "button", class: "secondary", onclick: () => add(true) }, t("addRow"))));
  const read = () => {
    const values = items.map((x) => x.read()).filter((v) => v !== undefined);
    return values.length || s.required ? values : undefined;
  };
  return { el, read };
}

/** `input.holders[0].share` as the console's paths write it, `input.holders.0.share`. */
const normalPath = (field) => String(field).replace(/\[(\d+)\]/g, ".$1");

/** Shows `e` next to the control its `extensions.field` names, else in `out`. */
export function showError(form, out, e) {
  for (const old of form.querySelectorAll(".field-error")) old.replaceChildren();
  for (const old of form.querySelectorAll("[aria-invalid]")) old.removeAttribute("aria-invalid");
  out.replaceChildren();
  if (e instanceof ApiError && e.field) {
    const parts = normalPath(e.field).split(".");
    while (parts.length) {
      const holder = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
      if (holder) {
        holder.querySelector(".field-error").replaceChildren(errorBox(e));
        const control = holder.querySelector("[data-path]");
        control?.setAttribute("aria-invalid", "true");
        control?.focus();
        return;
      }
      parts.pop();
    }
  }
  out.replaceChildren(errorBox(e));
}

/**
 * The form of `mutation`, built from the schema, in `into`. `prefill` gives values by path
 * (`input.citizen`); `expected` is the record's `{record, version}`, sent as the mutation's
 * `expected` argument when it has one; `opens(variables)`, when given, is the page to show after
 * success (a new record's).
 */
export async function buildCommandForm(into, mutation, { prefill = {}, expected = null, opens = null } = {}) {
  into.replaceChildren(h("p", { class: "muted" }, t("loading")));
  try {
    const args = await argsOf(mutation);
    const found = new Map();
    for (const a of args) await collect(a.type, found);
    const input = args.find((a) => a.name === "input");
    if (input && shape(input.type).kind !== "INPUT_OBJECT") {
      // The schema still declares this input as a JSON scalar: nothing to build a form from.
      into.replaceChildren(h("p", { class: "muted" }, t("formUntyped")));
      return;
    }
    const ctx = { form: `cmd-${mutation}`, types: found, prefill: { ...prefill } };
    const shown = args.filter((a) => !["commandId", "expected"].includes(a.name));
    const controls = shown.map((a) => {
      const s = shape(a.type);
      if (a.name === "input" && s.kind === "INPUT_OBJECT") {
        // The input's fields sit directly in the form, not in a box of their own.
        const type = found.get(s.name);
        const children = type.inputFields.map((f) => ({ name: f.name, ...control(ctx, `input.${f.name}`, f.name, fieldShape(f), f.description) }));
        return { arg: a, el: children.map((c) => c.el), read: () => Object.fromEntries(children.map((c) => [c.name, c.read()]).filter(([, v]) => v !== undefined)) };
      }
      return { arg: a, ...control(ctx, a.name, a.name, s, a.description) };
    });
    const hasExpected = expected && args.some((a) => a.name === "expected");
    const hasCommandId = args.some((a) => a.name === "commandId");
    const out = h("div", { class: "form-out wide" });
    let commandId = crypto.randomUUID();
    const form = h("form", { id: ctx.form, class: "command", onsubmit: async (ev) => {
      ev.preventDefault();
      const variables = {};
      const decls = [];
      const uses = [];
      for (const c of controls) {
        const v = c.read();
        if (v === undefined) continue;
        variables[c.arg.name] = v;
        decls.push(`$${c.arg.name}: ${typeText(c.arg.type)}`);
        uses.push(`${c.arg.name}: $${c.arg.name}`);
      }
      if (hasExpected) {
        variables.expected = expected;
        decls.push("$expected: ExpectedVersion");
        uses.push("expected: $expected");
      }
      if (hasCommandId) {
        variables.commandId = commandId;
        decls.push("$commandId: String");
        uses.push("commandId: $commandId");
      }
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        await gql(`mutation(${decls.join(", ")}) { ${mutation}(${uses.join(", ")}) { __typename } }`, variables);
        if (opens) doneAt(opens(variables));
        else done();
      } catch (e) {
        // A refusal wrote nothing: the next try is a new command. After a lost answer the same
        // id is sent again, so a write that did happen is not made twice.
        if (!["NETWORK", "COMMITTED_NOT_VISIBLE", "INTERNAL"].includes(e.code)) commandId = crypto.randomUUID();
        showError(form, out, e);
      } finally {
        submit.disabled = false;
      }
    } },
    controls.map((c) => c.el),
    h("p", { class: "muted wide" }, h("span", { class: "req", "aria-hidden": "true" }, "* "), t("requiredHint")),
    h("div", { class: "wide" }, h("button", { type: "submit" }, t("submit"))),
    out);
    into.replaceChildren(form);
    // The first field the record does not already fill takes the focus.
    [...form.querySelectorAll("input, select")].find((x) => !x.value)?.focus();
  } catch (e) {
    into.replaceChildren(errorBox(e));
  }
}

/** The everyday commands offered on each kind of record page. */
const COMMANDS = {
  citizen: ["changeResidence", "registerMarriage", "registerDivorce", "setParents", "recordDeath", "issueIdentityCard",
    "changeCitizenName", "mergeCitizens", "proposeRedaction", "restrictRecord", "liftRestriction"],
  parcel: ["transferRights", "registerMortgage", "releaseMortgage", "changeLandUse", "issueCertificate",
    "revokeCertificate", "splitParcel", "mergeParcels", "retireParcel", "proposeRedaction"],
  business: ["moveHeadOffice", "changeLegalRepresentatives", "renameBusiness", "changeCharterCapital",
    "changeBusinessLines", "suspendBusiness", "resumeBusiness", "dissolveBusiness", "registerBranch", "proposeRedaction"],
};

/** The registrations of new records, each with the id it will have, chosen here. */
const REGISTRATIONS = { registerCitizen: "citizen", registerBusiness: "business", registerParcel: "parcel" };

/**
 * The page that registers new records (birth registration, enterprise, parcel): one form per
 * kind, built from the schema like every command form, the new record's id pre-filled with a
 * fresh UUID (a retry after a lost answer sends the same id, so it registers once).
 */
export function registrationsPart() {
  return h("section", { id: "registrations" }, Object.entries(REGISTRATIONS).map(([mutation, idField]) => {
    const body = h("div", { class: "command-body" });
    const details = h("details", { id: `cmd-${mutation}-box`, ontoggle: () => {
      if (details.open && !body.childElementCount) {
        buildCommandForm(body, mutation, {
          prefill: { [`input.${idField}`]: crypto.randomUUID() },
          opens: (v) => `#/record/${idField}-${v.input[idField]}`,
        });
      }
    } }, h("summary", {}, t(`cmd_${mutation}`)), body);
    return details;
  }));
}

/**
 * The commands of a record page, each a disclosure whose form is built when first opened.
 * `prefill(mutation)` gives the values the record already knows (its own id, …).
 */
export function commandsPart(kind, record, prefill) {
  const list = COMMANDS[kind] ?? [];
  if (!list.length) return null;
  return h("section", { id: "commands" }, h("h2", {}, t("commands")),
    list.map((mutation) => {
      const body = h("div", { class: "command-body" });
      const details = h("details", { id: `cmd-${mutation}-box`, ontoggle: () => {
        if (details.open && !body.childElementCount) {
          buildCommandForm(body, mutation, { prefill: prefill(mutation), expected: { record: record.id, version: record.version } });
        }
      } }, h("summary", {}, t(`cmd_${mutation}`)), body);
      return details;
    }));
}
