import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { session } from "./api/session";
import "./styles.css";
import { updates } from "./sw";

window.addEventListener("storage", (event) => session.onStorage(event.key));
void session.start();
updates.register();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
