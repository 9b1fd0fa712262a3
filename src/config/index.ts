/** The estate file: its schema, the loader with its error report, and the conversion to the core's Estate. */
export type { EstateSettings, LoadedEstate } from './load-estate.ts';
export { loadEstate, parseEstate } from './load-estate.ts';
export type { ConfigProblem } from './config-error.ts';
export { EstateConfigError, formatConfigProblems } from './config-error.ts';
export type { EstateFile } from './estate-schema.ts';
export { estateFileSchema, policiesSchema } from './estate-schema.ts';
export type { EstateProblem, EstatePath, LooseEstateFile } from './check-estate.ts';
export { checkEstate } from './check-estate.ts';
export { toEstate } from './to-estate.ts';
