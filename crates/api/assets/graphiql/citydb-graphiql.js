// citydb's GraphiQL bootstrap. Served from this server like every other asset, so the page
// needs no network beyond the server itself and runs under a strict Content-Security-Policy.
(function () {
  'use strict';
  var fields = {
    token: 'citydb-token',
    endUser: 'citydb-end-user',
    caseId: 'citydb-case',
    purpose: 'citydb-purpose'
  };
  // sessionStorage, not localStorage: a token pasted here should not outlive the tab.
  Object.keys(fields).forEach(function (key) {
    var input = document.getElementById(fields[key]);
    var stored = sessionStorage.getItem('citydb.' + key);
    if (stored) input.value = stored;
    input.addEventListener('input', function () {
      sessionStorage.setItem('citydb.' + key, input.value.trim());
    });
  });
  document.getElementById('citydb-auth').addEventListener('submit', function (e) { e.preventDefault(); });

  function value(id) { return document.getElementById(id).value.trim(); }

  function contextHeaders() {
    var h = {};
    var token = value(fields.token);
    if (token) h['Authorization'] = 'Bearer ' + token;
    if (value(fields.endUser)) h['X-Road-UserId'] = value(fields.endUser);
    if (value(fields.caseId)) h['X-Road-Issue'] = value(fields.caseId);
    if (value(fields.purpose)) h['X-Purpose'] = value(fields.purpose);
    return h;
  }

  var http = window.location.origin + '/graphql';
  var ws = http.replace(/^http/, 'ws');

  // A fetcher per operation, so that a token typed after the page loaded is used at once. The
  // same headers travel in the WebSocket connection_init payload, since browsers cannot set
  // headers on a WebSocket upgrade.
  function fetcher(params, opts) {
    var headers = contextHeaders();
    return GraphiQL.createFetcher({
      url: http,
      subscriptionUrl: ws,
      headers: headers,
      wsConnectionParams: headers
    })(params, opts);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  function render() {
    root.render(React.createElement(GraphiQL, {
      // A new fetcher identity makes GraphiQL fetch the schema again, now with the new headers.
      fetcher: function (params, opts) { return fetcher(params, opts); },
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false
    }));
  }
  // 'change' fires once editing is done (Enter or leaving the field), not on every keystroke.
  Object.keys(fields).forEach(function (key) {
    document.getElementById(fields[key]).addEventListener('change', render);
  });
  render();
})();
