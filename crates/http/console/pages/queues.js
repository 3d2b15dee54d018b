// Placeholder: this page is being written.
import { h, replace } from "../ui.js";
const todo = (ctx) => replace(ctx.main, h("h1", {}, "queues"), h("p", {}, "Not written yet."));
export const list = todo, detail = todo, item = todo, trigger = todo, settings = todo;
