// Submits the response form of response_mode=form_post (no inline script under our CSP).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form-post");
  if (form) { form.submit(); }
});
