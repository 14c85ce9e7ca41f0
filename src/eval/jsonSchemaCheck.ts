/**
 * Checks a value against a JSON schema: the keywords suites use (type, properties, required, additionalProperties,
 * items, prefixItems, enum, const, oneOf/anyOf/allOf, lengths, bounds, $ref to $defs). Returns the first problem as
 * "at /path: what is wrong", or null when the value matches.
 */
type Schema = Record<string, unknown>;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

export function checkJsonSchema(value: unknown, schema: Schema, root: Schema = schema, path = ""): string | null {
  const at = path || "/";
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace(/^#\/(\$defs|definitions)\//, "");
    const target = ((root.$defs ?? root.definitions) as Record<string, Schema> | undefined)?.[name];
    if (!target) return `at ${at}: unknown reference ${schema.$ref}`;
    return checkJsonSchema(value, target, root, path);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((type) => matchesType(value, type)))
      return `at ${at}: expected ${types.join(" or ")}, found ${typeOf(value)}`;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => JSON.stringify(option) === JSON.stringify(value)))
    return `at ${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`;
  if ("const" in schema && JSON.stringify(schema.const) !== JSON.stringify(value))
    return `at ${at}: must be ${JSON.stringify(schema.const)}`;
  for (const key of ["oneOf", "anyOf"] as const) {
    const options = schema[key] as Schema[] | undefined;
    if (options && !options.some((option) => checkJsonSchema(value, option, root, path) === null))
      return `at ${at}: matches none of the ${key} alternatives`;
  }
  for (const part of (schema.allOf as Schema[] | undefined) ?? []) {
    const problem = checkJsonSchema(value, part, root, path);
    if (problem) return problem;
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && [...value].length < schema.minLength)
      return `at ${at}: shorter than ${schema.minLength} characters`;
    if (typeof schema.maxLength === "number" && [...value].length > schema.maxLength)
      return `at ${at}: longer than ${schema.maxLength} characters`;
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value))
      return `at ${at}: does not match ${schema.pattern}`;
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) return `at ${at}: below ${schema.minimum}`;
    if (typeof schema.maximum === "number" && value > schema.maximum) return `at ${at}: above ${schema.maximum}`;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems)
      return `at ${at}: fewer than ${schema.minItems} items`;
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems)
      return `at ${at}: more than ${schema.maxItems} items`;
    const prefix = (schema.prefixItems as Schema[] | undefined) ?? [];
    for (const [index, item] of value.entries()) {
      const itemSchema = prefix[index] ?? schema.items;
      if (itemSchema === false) return `at ${path}/${index}: no item allowed here`;
      if (itemSchema && typeof itemSchema === "object") {
        const problem = checkJsonSchema(item, itemSchema as Schema, root, `${path}/${index}`);
        if (problem) return problem;
      }
    }
  }
  if (typeOf(value) === "object") {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const name of (schema.required as string[] | undefined) ?? [])
      if (!(name in object)) return `at ${at}: the property ${JSON.stringify(name)} is missing`;
    const keys = Object.keys(object);
    if (typeof schema.minProperties === "number" && keys.length < schema.minProperties)
      return `at ${at}: fewer than ${schema.minProperties} properties`;
    if (typeof schema.maxProperties === "number" && keys.length > schema.maxProperties)
      return `at ${at}: more than ${schema.maxProperties} properties`;
    for (const key of keys) {
      const propertySchema = properties[key] ?? schema.additionalProperties;
      if (propertySchema === false) return `at ${path}/${key}: the property is not allowed`;
      if (propertySchema && typeof propertySchema === "object") {
        const problem = checkJsonSchema(object[key], propertySchema as Schema, root, `${path}/${key}`);
        if (problem) return problem;
      }
    }
  }
  return null;
}
