// hls.js ships one declaration file; its light build (no subtitles, alternate audio or DRM,
// which Lufy's streams never use) has the same API.
declare module "hls.js/light" {
  export * from "hls.js";
  export { default } from "hls.js";
}
