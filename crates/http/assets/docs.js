// Starts Swagger UI on Baton's own OpenAPI document. No validator: Swagger UI's default sends
// the document to an online service, and /docs must work with no internet.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
