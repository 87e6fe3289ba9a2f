// Native libraries imported `with { type: "file" }` resolve to a file path (src/native.ts).
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.dylib" {
  const path: string;
  export default path;
}
