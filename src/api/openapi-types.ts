/** The slice of OpenAPI 3.1 each route declares about itself. */
export type JsonSchema = Record<string, unknown>;

export interface ParamDoc {
  name: string;
  description: string;
  schema: JsonSchema;
  required?: boolean;
}

export interface MediaDoc {
  schema: JsonSchema;
}

export interface ResponseDoc {
  description: string;
  content?: Record<string, MediaDoc>;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
}

export interface OperationDoc {
  summary: string;
  tags: string[];
  description?: string;
  query?: ParamDoc[];
  requestBody?: { required: boolean; description?: string; content: Record<string, MediaDoc> };
  responses: Record<string, ResponseDoc>;
}

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: JsonSchema): Record<string, MediaDoc> => ({ 'application/json': { schema } });
