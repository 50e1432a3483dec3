// Start Swagger UI on /api/docs. A file of ours rather than an inline script, so the page
// works under Content-Security-Policy script-src 'self'.
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.url,
  domNode: root,
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
});
