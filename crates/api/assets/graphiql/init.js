// Starts GraphiQL against this server. A file of its own (not inline) so that the page's
// Content-Security-Policy can forbid inline scripts.
(function () {
  var fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).toString() });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: '{\n  "Authorization": "Bearer <token from the login mutation>"\n}',
    }),
  );
})();
