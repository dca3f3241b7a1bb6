// `express4` is express 4 installed under an npm alias (package.json) so that express 4 and 5
// run side by side in test/helpers/apps.ts. Their public API, as used there, is the same.
declare module 'express4' {
  import express from 'express'
  export default express
}
