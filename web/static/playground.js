// Starts GraphiQL (vendored, loaded before this file) against apikeyd's
// /graphql. Kept out of the page so that its CSP allows no inline script.
//
// A dashboard user who is signed in in this tab has their login token in
// sessionStorage; it goes into the Authorization header of the Headers pane,
// never into a URL. GraphiQL keeps its own state (tabs, history) in
// sessionStorage too, not localStorage, so nothing it holds outlives the tab.
(function () {
  'use strict';

  var SESSION_KEY = 'apikeyd.session';
  var NAMESPACE = 'graphiql:';
  var TAB_STATE = NAMESPACE + 'tabState';

  var DEFAULT_QUERY = [
    '# apikeyd GraphQL playground. Run a query with Ctrl-Enter (or the ▶ button).',
    '# Management (apiKeys, createApiKey, revokeApiKey) needs a login token;',
    '# the Headers pane below carries it as {"Authorization": "Bearer …"}.',
    '',
    '{',
    '  viewer {',
    '    userId',
    '    authMethod',
    '  }',
    '  apiKeys {',
    '    id',
    '    keyPrefix',
    '    name',
    '    createdAt',
    '    lastUsedAt',
    '    expiresAt',
    '  }',
    '}',
    '',
  ].join('\n');

  function loginToken() {
    try {
      var s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (s && typeof s.token === 'string' && s.token &&
        !(s.expiresAt && Date.parse(s.expiresAt) <= Date.now())) {
        return s.token;
      }
    } catch (e) {
      // unreadable: no token
    }
    return null;
  }

  var token = loginToken();
  var headers = token ? JSON.stringify({ Authorization: 'Bearer ' + token }, null, 2) : '';

  // GraphiQL's storage, in sessionStorage under its own namespace. Tabs it
  // saved earlier have their headers stripped (headers are not persisted), so
  // the current token is put back into each tab that has none.
  var storage = {
    getItem: function (key) {
      var value = sessionStorage.getItem(key);
      if (key !== TAB_STATE || !value || !headers) return value;
      try {
        var state = JSON.parse(value);
        (state.tabs || []).forEach(function (tab) {
          if (!tab.headers) tab.headers = headers;
        });
        return JSON.stringify(state);
      } catch (e) {
        return value;
      }
    },
    setItem: function (key, value) { sessionStorage.setItem(key, value); },
    removeItem: function (key) { sessionStorage.removeItem(key); },
    clear: function () {
      // Only GraphiQL's own entries: the login token stays.
      Object.keys(sessionStorage).forEach(function (key) {
        if (key.indexOf(NAMESPACE) === 0) sessionStorage.removeItem(key);
      });
    },
    get length() {
      return Object.keys(sessionStorage).filter(function (key) {
        return key.indexOf(NAMESPACE) === 0;
      }).length;
    },
  };

  var note = document.getElementById('auth-note');
  note.textContent = token
    ? 'Your login token is in the Headers pane.'
    : 'Not signed in: sign in on the dashboard, or put {"Authorization": "Bearer …"} in the Headers pane.';

  var root = document.getElementById('graphiql');
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    document.getElementById('placeholder').textContent = 'The playground’s scripts did not load. Reload the page to try again.';
    return;
  }

  var fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', location.href).href });
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: DEFAULT_QUERY,
    defaultHeaders: headers,
    shouldPersistHeaders: false,
    storage: storage,
    defaultEditorToolsVisibility: 'headers',
  }));
})();
