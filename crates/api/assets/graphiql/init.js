// Starts GraphiQL against this server. A file of its own (not inline) so that the page's
// Content-Security-Policy can forbid inline scripts.
(function () {
  var http = new URL('/graphql', window.location.href);
  var ws = new URL('/graphql/ws', window.location.href);
  ws.protocol = http.protocol === 'https:' ? 'wss:' : 'ws:';
  // Subscriptions go over graphql-transport-ws (the graphql-ws client inside GraphiQL's
  // bundle); the headers editor's Authorization becomes the connection_init payload.
  var base = GraphiQL.createFetcher({ url: http.toString(), subscriptionUrl: ws.toString() });
  // GraphiQL parses the editor's text (and picks the operation name) a moment after an
  // edit; run before that, a subscription would be judged by the previous text and go
  // over HTTP. Parse the text being sent instead.
  var fetcher = function (params, opts) {
    var doc;
    try {
      doc = GraphiQL.GraphQL.parse(params.query);
    } catch (e) {
      return base(params, opts);
    }
    var ops = doc.definitions.filter(function (d) { return d.kind === 'OperationDefinition'; });
    var name = params.operationName;
    if (!name && ops.length === 1 && ops[0].name) name = ops[0].name.value;
    return base(
      Object.assign({}, params, name ? { operationName: name } : {}),
      Object.assign({}, opts, { documentAST: doc }),
    );
  };
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: '{\n  "Authorization": "Bearer <token from the login mutation>"\n}',
    }),
  );
})();
