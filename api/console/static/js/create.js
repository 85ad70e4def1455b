// A new draft experiment: name, flag key and description; the API gives it PostHog's default
// control/test split. Errors come back inline, next to the field the API names in `attr`.

import { post, projectPath } from "./api.js";
import { h, replace } from "./dom.js";

function field(id, label, input, help) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("p", { class: "help" }, help) : null);
}

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 200);
}

export function createView(main) {
  const name = h("input", { id: "new-name", name: "name", required: true, maxlength: 400, autocomplete: "off" });
  const key = h("input", { id: "new-flag-key", name: "feature_flag_key", required: true, maxlength: 400, autocomplete: "off" });
  const description = h("textarea", { id: "new-description", name: "description", rows: 3, maxlength: 3000 });
  const error = h("p", { class: "form-error", role: "alert", id: "create-error" });
  let keyTouched = false;
  key.addEventListener("input", () => (keyTouched = true));
  name.addEventListener("input", () => {
    if (!keyTouched) key.value = slug(name.value);
  });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "create-submit" }, "Create draft");
  const form = h(
    "form",
    { class: "card form", novalidate: true },
    field("new-name", "Name", name),
    field("new-flag-key", "Feature flag key", key, "A new flag is created with control and test at 50% each; an existing flag is reused as it is."),
    field("new-description", "Description (optional)", description),
    error,
    h("div", { class: "form-actions" }, h("a", { class: "btn", href: "#/" }, "Cancel"), submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const body = { name: name.value.trim(), feature_flag_key: key.value.trim(), description: description.value };
      const exp = await post(projectPath("experiments/"), body);
      location.hash = `#/experiments/${exp.id}`;
    } catch (err) {
      error.textContent = err.attr ? `${err.attr}: ${err.message}` : err.message;
      (err.attr === "feature_flag_key" ? key : name).focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "New experiment")), form);
  name.focus();
}
