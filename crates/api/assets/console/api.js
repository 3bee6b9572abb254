// The one way the console talks to the server: POST /graphql on this origin, with the bearer
// token from this tab's session storage. Errors come back as {code, message, field, reason}:
// `field` is the input path a refusal names (`input.since`), `reason` the rule's own code.

const TOKEN = "citydb.token";

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else sessionStorage.removeItem(TOKEN);
}

export class ApiError extends Error {
  constructor(code, message, field, reason) {
    super(message);
    this.code = code;
    this.field = field ?? null;
    this.reason = reason ?? null;
  }
}

/** Runs one operation; resolves to `data`, rejects with the first error as an ApiError. */
export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        ...(token() ? { Authorization: `Bearer ${token()}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError("NETWORK", String(e));
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("INTERNAL", `HTTP ${response.status}`);
  }
  const first = body.errors?.[0];
  if (first) {
    throw new ApiError(
      first.extensions?.code ?? "INTERNAL",
      first.message ?? "",
      first.extensions?.field,
      first.extensions?.reason,
    );
  }
  return body.data;
}
