import { Denied, Expired, TimedOut, type Cancelled } from "./errors.js";

/** The sentence a model gets when its call was not approved. */
export function refusalMessage(error: Denied | Expired | Cancelled | TimedOut): string {
  if (error instanceof Denied) {
    const said = error.comments.length > 0 ? ` Reviewer's comment: ${error.comments.join(" / ")}` : "";
    return `Not approved: a reviewer denied this call, so it was not run.${said}`;
  }
  if (error instanceof Expired) return "Not approved: nobody decided before the request expired, so it was not run.";
  if (error instanceof TimedOut) return "Not approved: no decision came in time, so the request was withdrawn and nothing was run.";
  return "Not approved: the request was cancelled, so it was not run.";
}
