export { Signoff, settle } from "./client.js";
export type { Approval, Approver, SignoffOptions, Submission } from "./client.js";
export { ApiError, Cancelled, Denied, Expired, SignoffError, TimedOut, Unreachable } from "./errors.js";
export type { Denial } from "./errors.js";
export type * from "./types.js";
