import type { ComponentChildren } from 'preact';

/** A table of the app: a caption for screen readers, column headers, the rows as children. */
export function DataTable(props: { caption: string; headers: readonly string[]; class?: string; children: ComponentChildren }) {
  return (
    <table class={props.class}>
      <caption class="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          {props.headers.map((h) => (
            <th key={h} scope="col">
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
