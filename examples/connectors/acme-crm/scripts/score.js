// The body of a function of input (the message) and $ (the component's
// properties and upstream outputs), as in core.Code.
const c = input.contact || $.properties.contact || {};
const fields = ["email", "firstName", "lastName", "phone"];
const filled = fields.filter((f) => typeof c[f] === "string" && c[f].length > 0).length;
return { id: c.id, score: Math.round((100 * filled) / fields.length) };
