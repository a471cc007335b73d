// Handlers bound to the contract's orders, typed by the table: a handler gets its order's payload as the
// table declares it, and a misspelt subject or order, or a handler for an order the subject does not
// have, does not compile. The entry points take them untyped (one table row validates what reaches each).
import type { OrderContext, OrderHandler } from "../runtime/orders.ts";
import type { ContractSubject, OrderName, OrderPayload } from "./contract-table.ts";

/** The handler of one order: its payload validated against the order's row of the table. */
export type ContractHandler<S extends ContractSubject, O extends OrderName<S>> = (
  payload: OrderPayload<S, O>,
  context: OrderContext,
) => ReturnType<OrderHandler>;

/** The orders of one subject a node handles (the others are refused as not run by this node). */
export type SubjectBindings<S extends ContractSubject> = { [O in OrderName<S>]?: ContractHandler<S, O> };

/** subject → order → handler, for the subjects a node handles. */
export type ContractBindings = { [S in ContractSubject]?: SubjectBindings<S> };

/**
 * The handler bound to `order` on `subject`, as an entry point calls it. The entry point validates every
 * payload against the schema of that same row before calling, so the handler gets the payload its type
 * names; this is the one place the typed handlers meet the untyped wire.
 */
export function boundHandler(bindings: ContractBindings, subject: string, order: string): OrderHandler | undefined {
  const bySubject = bindings as Readonly<Record<string, Readonly<Record<string, OrderHandler | undefined>> | undefined>>;
  const orders = Object.hasOwn(bySubject, subject) ? bySubject[subject] : undefined;
  return orders !== undefined && Object.hasOwn(orders, order) ? orders[order] : undefined;
}
