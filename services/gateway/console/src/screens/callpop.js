// The incoming call pop for hotline agents (started beside every screen by screens/index.js).
export function startCallPop() {
  return () => {};
}
