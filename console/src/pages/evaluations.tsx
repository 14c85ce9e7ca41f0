import { useEffect, useState } from "preact/hooks";
import { errorText, getJson, request } from "../api.js";

interface Run {
  id: string;
  suite: string;
  created: string;
  finished: string | null;
  answers: number;
  models: {
    model: string;
    baseline: boolean;
    pass_rate: number;
    interval: { low: number; high: number };
    verdict: string;
  }[];
}

const percent = (value: number) => `${Math.round(value * 100)}%`;

export function Evaluations() {
  const [runs, setRuns] = useState<Run[]>([]);
  const [report, setReport] = useState<{ id: string; html: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    getJson<{ data: Run[] }>("/admin/evals")
      .then((list) => setRuns(list.data))
      .catch((failure) => setError(errorText(failure)));
  }, []);

  const open = async (id: string) => {
    try {
      const response = await request(`/admin/evals/${encodeURIComponent(id)}/report`);
      setReport({ id, html: await response.text() });
    } catch (failure) {
      setError(errorText(failure));
    }
  };

  return (
    <div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {runs.length === 0 && (
        <p>
          No evaluation runs yet: <code>freehold eval suite.yaml --models a,b</code> records them here.
        </p>
      )}
      {runs.length > 0 && (
        <table aria-label="Evaluation runs">
          <thead>
            <tr>
              <th>Run</th>
              <th>Suite</th>
              <th>Started</th>
              <th>Models: pass rate (95% interval)</th>
              <th>Report</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.id}>
                <td>{run.id}</td>
                <td>{run.suite}</td>
                <td>
                  {new Date(run.created).toLocaleString()}
                  {run.finished ? "" : " (unfinished)"}
                </td>
                <td>
                  {run.models.map((model) => (
                    <div key={model.model}>
                      {model.model}
                      {model.baseline ? " (baseline)" : ""}: {percent(model.pass_rate)} ({percent(model.interval.low)}–
                      {percent(model.interval.high)}), {model.verdict}
                    </div>
                  ))}
                </td>
                <td>
                  <button type="button" aria-label={`Open report of ${run.id}`} onClick={() => void open(run.id)}>
                    Open report
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {report && (
        // The report has no scripts; the empty sandbox keeps it from running any and from reaching this page.
        <iframe title={`Evaluation report ${report.id}`} sandbox="" srcdoc={report.html} class="report" />
      )}
    </div>
  );
}
